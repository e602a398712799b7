/* Scores of one observation's candidates: a LightGBM regression forest walked in C.
 *
 * Why: the NumPy evaluator (mltune.forest, QuickScorer bit vectors) spends ~0.16 ms a tick,
 * mostly in per-call overhead and cold caches, for ~3000 node visits. Here each tree is
 * walked once for all candidates together: the walk forks only at splits on the candidate
 * feature, where the candidates are split into those going left and right (a bit set).
 *
 * Exactness: decisions are LightGBM's Tree::NumericalDecision on a dense row (|x| <=
 * kZeroThreshold is 0), and each candidate's score is 0.0 plus tree 0, tree 1, ... in order,
 * as GBDT::PredictRaw adds them. mltune.forest is the reference: tests/test_fastforest.py
 * holds the two equal to the bit, and Model.load checks this path against the booster.
 *
 * The arrays come from mltune.forest, which has parsed the text, but are checked here again:
 * a bad index must raise, never read out of bounds or loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define K_ZERO ((double)1e-35f) /* LightGBM's kZeroThreshold is a float */
#define DEFAULT_LEFT 2          /* decision_type bits (LightGBM tree.h) */
#define MISSING_ZERO 1          /* (decision_type >> 2) & 3 */
#define MISSING_NAN 2
#define CHUNK 64 /* candidates per walk: one bit each in a uint64_t */
#define AHEAD 4  /* trees prefetched ahead of the walk */

/* 16 bytes: four to a cache line. */
typedef struct {
    double threshold;
    int16_t left, right; /* >= 0: node in this tree; < 0: leaf ~child */
    uint16_t feature;
    uint8_t default_left, missing;
} Node;

/* A tree is one run of memory, its nodes then its leaf values, and the trees follow each
 * other in order: the walk only ever moves forward, so the next trees can be prefetched
 * while this one is walked. With caches cold (a tick a second), waiting for one node after
 * another was most of the time: ~0.1 MB, 4-5 dependent misses per tree. */
typedef struct {
    int32_t start, nodes; /* in Nodes, from ForestObject.mem */
    int32_t size;         /* in Nodes, leaves included */
} Tree;

typedef struct {
    PyObject_HEAD
    Py_ssize_t features, ntrees, maxnodes;
    Tree *trees;
    Node *mem;
} ForestObject;

static void forest_dealloc(ForestObject *self) {
    PyMem_Free(self->trees);
    PyMem_Free(self->mem);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A buffer of n items of `size` bytes (native int32 or float64, from numpy's tobytes). */
static int check_len(const Py_buffer *b, Py_ssize_t n, Py_ssize_t size, const char *name) {
    if (b->len != n * size) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, b->len, n * size);
        return -1;
    }
    return 0;
}

static int child_ok(int32_t c, int32_t node, int32_t nodes) {
    /* A child node comes after its parent (LightGBM numbers them in split order), which
     * also rules out cycles; a leaf index is below nodes + 1. */
    return c >= 0 ? c > node && c < nodes : ~c <= nodes;
}

static inline const double *leaves(const Node *tree, int32_t nodes) {
    return (const double *)(tree + nodes);
}

static int forest_fill(ForestObject *self, Py_buffer *sizes, Py_buffer *feat, Py_buffer *thr,
                       Py_buffer *kind, Py_buffer *left, Py_buffer *right, Py_buffer *leaf) {
    if (self->features < 1 || self->features > UINT16_MAX) {
        PyErr_Format(PyExc_ValueError, "features: %zd, expected 1..%d", self->features,
                     UINT16_MAX);
        return -1;
    }
    if (sizes->len % 4 || sizes->len == 0) {
        PyErr_SetString(PyExc_ValueError, "sizes: expected int32 node counts, one per tree");
        return -1;
    }
    self->ntrees = sizes->len / 4;
    self->trees = PyMem_Calloc(self->ntrees, sizeof(Tree));
    if (!self->trees) {
        PyErr_NoMemory();
        return -1;
    }
    const int32_t *n = sizes->buf;
    Py_ssize_t total = 0, units = 0;
    for (Py_ssize_t t = 0; t < self->ntrees; t++) {
        if (n[t] < 0 || n[t] > INT16_MAX - 1) {
            PyErr_Format(PyExc_ValueError, "tree %zd: %d nodes", t, n[t]);
            return -1;
        }
        /* n + 1 leaf values of 8 bytes take (n + 2) / 2 Nodes. */
        self->trees[t] = (Tree){(int32_t)units, n[t], n[t] + (n[t] + 2) / 2};
        units += self->trees[t].size;
        total += n[t];
        self->maxnodes = n[t] > self->maxnodes ? n[t] : self->maxnodes;
        if (units > INT32_MAX / 2) {
            PyErr_SetString(PyExc_ValueError, "too many nodes");
            return -1;
        }
    }
    if (check_len(feat, total, 4, "split_feature") || check_len(thr, total, 8, "threshold")
        || check_len(kind, total, 4, "decision_type") || check_len(left, total, 4, "left_child")
        || check_len(right, total, 4, "right_child")
        || check_len(leaf, total + self->ntrees, 8, "leaf_value"))
        return -1;
    self->mem = PyMem_Calloc(units, sizeof(Node));
    if (!self->mem) {
        PyErr_NoMemory();
        return -1;
    }
    const int32_t *f = feat->buf, *k = kind->buf, *l = left->buf, *r = right->buf;
    const double *th = thr->buf, *lv = leaf->buf;
    for (Py_ssize_t t = 0, j = 0; t < self->ntrees; t++) {
        Node *tree = self->mem + self->trees[t].start;
        for (int32_t i = 0; i < n[t]; i++, j++) {
            int32_t missing = (k[j] >> 2) & 3;
            /* Only numerical splits: bit 0 is categorical, above bit 3 nothing is defined. */
            if (f[j] < 0 || f[j] >= self->features || (k[j] & ~(DEFAULT_LEFT | 12))
                || missing > MISSING_NAN || !child_ok(l[j], i, n[t]) || !child_ok(r[j], i, n[t])) {
                PyErr_Format(PyExc_ValueError, "tree %zd node %d: malformed split", t, i);
                return -1;
            }
            tree[i] = (Node){th[j], (int16_t)l[j], (int16_t)r[j], (uint16_t)f[j],
                             (k[j] & DEFAULT_LEFT) != 0, (uint8_t)missing};
        }
        memcpy((double *)leaves(tree, n[t]), lv, (n[t] + 1) * sizeof(double));
        lv += n[t] + 1;
    }
    return 0;
}

static PyObject *forest_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"features", "sizes", "split_feature", "threshold",
                             "decision_type", "left_child", "right_child", "leaf_value", NULL};
    Py_ssize_t features;
    Py_buffer b[7] = {{0}};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ny*y*y*y*y*y*y*:Forest", kwlist, &features,
                                     &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6]))
        return NULL;
    ForestObject *self = (ForestObject *)type->tp_alloc(type, 0);
    if (self) {
        self->features = features;
        if (forest_fill(self, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6])) {
            Py_DECREF(self);
            self = NULL;
        }
    }
    for (int i = 0; i < 7; i++)
        PyBuffer_Release(&b[i]);
    return (PyObject *)self;
}

/* The value as LightGBM's predictor sees it: a dense row drops |x| <= kZeroThreshold. */
static inline double as_row(double x) { return x >= -K_ZERO && x <= K_ZERO ? 0.0 : x; }

/* Tree::NumericalDecision; x already through as_row. */
static inline int goes_left(const Node *n, double x) {
    if (x != x) {
        if (n->missing == MISSING_NAN)
            return n->default_left;
        x = 0.0;
    }
    if (n->missing == MISSING_ZERO && x == 0.0)
        return n->default_left;
    return x <= n->threshold;
}

/* Up to CHUNK candidate values, ready for deciding all of them at once (left_set). */
typedef struct {
    int n;
    uint64_t nan, zero; /* the candidates that are NaN, and 0 */
    double x[CHUNK];    /* the values, NaN as 0 */
} Cands;

/* goes_left for every candidate, as a set: without a branch per candidate. */
static inline uint64_t left_set(const Node *n, const Cands *c) {
    uint64_t le = 0, rule = 0; /* the candidates `missing` sends the default way */
    for (int j = 0; j < c->n; j++)
        le |= (uint64_t)(c->x[j] <= n->threshold) << j;
    if (n->missing == MISSING_NAN)
        rule = c->nan;
    else if (n->missing == MISSING_ZERO)
        rule = c->nan | c->zero; /* NaN is 0 without a NaN rule */
    return (le & ~rule) | (n->default_left ? rule : 0);
}

struct Fork {
    int32_t node;
    uint64_t set; /* the candidates that go this way */
};

/* Adds each tree's leaf to the score of the candidates that reach it, tree after tree.
 * `stack` holds the forks still to walk: at most one per node. */
static void walk(const ForestObject *self, const double *row, Py_ssize_t feature,
                 const Cands *cand, double *score, struct Fork *stack) {
    const uint64_t all = cand->n == CHUNK ? ~0ULL : (1ULL << cand->n) - 1;
    for (Py_ssize_t t = 0; t < self->ntrees; t++) {
        if (t + AHEAD < self->ntrees) {
            const Tree ahead = self->trees[t + AHEAD];
            const char *p = (const char *)(self->mem + ahead.start);
            for (int32_t b = 0; b < ahead.size * (int32_t)sizeof(Node); b += 64)
                __builtin_prefetch(p + b);
        }
        const Tree tree = self->trees[t];
        const Node *nodes = self->mem + tree.start;
        int sp = 0;
        int32_t i = tree.nodes ? 0 : ~0; /* a tree without splits is its leaf 0 */
        uint64_t set = all;
        for (;;) {
            while (i >= 0) {
                const Node *n = nodes + i;
                if (n->feature != feature) {
                    i = goes_left(n, row[n->feature]) ? n->left : n->right;
                    continue;
                }
                uint64_t l = left_set(n, cand) & set;
                if (l && l != set) {
                    stack[sp++] = (struct Fork){n->right, set & ~l};
                    set = l;
                    i = n->left;
                } else {
                    i = l ? n->left : n->right;
                }
            }
            const double v = leaves(nodes, tree.nodes)[~i];
            for (uint64_t s = set; s; s &= s - 1)
                score[__builtin_ctzll(s)] += v;
            if (!sp)
                break;
            sp--;
            i = stack[sp].node;
            set = stack[sp].set;
        }
    }
}

/* Floats of a sequence into out[0..n) but out[skip], as Python's float() would take them. */
static int floats(PyObject *fast, double *out, Py_ssize_t skip) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t j = 0; j < n; j++) {
        if (j == skip)
            continue;
        out[j] = PyFloat_AsDouble(items[j]);
        if (out[j] == -1.0 && PyErr_Occurred())
            return -1;
        out[j] = as_row(out[j]);
    }
    return 0;
}

static PyObject *forest_predict(ForestObject *self, PyObject *args) {
    PyObject *base_arg, *values_arg, *base = NULL, *values = NULL, *out = NULL;
    Py_ssize_t feature;
    double *row = NULL, *cand = NULL;
    struct Fork *stack = NULL;
    if (!PyArg_ParseTuple(args, "OnO:predict", &base_arg, &feature, &values_arg))
        return NULL;
    if (feature < 0 || feature >= self->features) {
        PyErr_Format(PyExc_ValueError, "feature %zd: the forest has %zd", feature,
                     self->features);
        return NULL;
    }
    base = PySequence_Fast(base_arg, "base must be a sequence of floats");
    values = base ? PySequence_Fast(values_arg, "values must be a sequence of floats") : NULL;
    if (!values)
        goto done;
    if (PySequence_Fast_GET_SIZE(base) != self->features) {
        PyErr_Format(PyExc_ValueError, "base has %zd features, the forest %zd",
                     PySequence_Fast_GET_SIZE(base), self->features);
        goto done;
    }
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(values);
    row = PyMem_Malloc(self->features * sizeof(double));
    cand = PyMem_Calloc(2 * nv + 1, sizeof(double)); /* values, then their scores */
    stack = PyMem_Malloc((self->maxnodes + 1) * sizeof(struct Fork));
    if (!row || !cand || !stack) {
        PyErr_NoMemory();
        goto done;
    }
    if (floats(base, row, feature) || floats(values, cand, -1))
        goto done;
    double *score = cand + nv;
    for (Py_ssize_t c = 0; c < nv; c += CHUNK) {
        Cands chunk = {nv - c < CHUNK ? (int)(nv - c) : CHUNK, 0, 0, {0}};
        for (int j = 0; j < chunk.n; j++) {
            double x = cand[c + j];
            chunk.nan |= (uint64_t)(x != x) << j;
            chunk.zero |= (uint64_t)(x == 0.0) << j;
            chunk.x[j] = x != x ? 0.0 : x;
        }
        walk(self, row, feature, &chunk, score + c, stack);
    }
    out = PyList_New(nv);
    for (Py_ssize_t c = 0; out && c < nv; c++) {
        PyObject *x = PyFloat_FromDouble(score[c]);
        if (!x) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, c, x);
    }
done:
    Py_XDECREF(base);
    Py_XDECREF(values);
    PyMem_Free(row);
    PyMem_Free(cand);
    PyMem_Free(stack);
    return out;
}

static PyMethodDef forest_methods[] = {
    {"predict", (PyCFunction)forest_predict, METH_VARARGS,
     "predict(base, feature, values) -> list[float]: scores of the rows equal to base except\n"
     "feature `feature`, which takes each of `values` (base[feature] is ignored)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mltune._fastforest.Forest",
    .tp_basicsize = sizeof(ForestObject),
    .tp_dealloc = (destructor)forest_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Forest(features, sizes, split_feature, threshold, decision_type, left_child,\n"
              "right_child, leaf_value): LightGBM trees as flat native arrays (int32 and\n"
              "float64 bytes; sizes: nodes per tree, leaf_value: nodes + 1 per tree).",
    .tp_methods = forest_methods,
    .tp_new = forest_new,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastforest", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__fastforest(void) {
    if (PyType_Ready(&ForestType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Forest", (PyObject *)&ForestType) < 0)
        Py_CLEAR(m);
    return m;
}
