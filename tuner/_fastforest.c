/* Scores of one observation's candidates: mltune.forest's QuickScorer tables, read in C.
 *
 * Why: the NumPy evaluator spends ~0.16 ms a tick in per-call overhead and cold caches.
 * Walking the trees in C still took ~30 us a tick: ~1600 dependent, unpredictable branches
 * and cache misses, one node after the other. The bit vectors of mltune.forest need neither:
 * per feature a binary search and an AND over one word per tree, then per tree and candidate
 * an AND, the highest bit and a leaf value, all read in order (prefetched).
 *
 * The tables are those the NumPy evaluator uses (mltune.forest.Forest._compile), so this
 * file decides nothing about splits itself: it picks the same rows (NaN, then |x| <=
 * kZeroThreshold as 0, then the prefix of thresholds < x) and adds each candidate's leaves
 * to 0.0 tree after tree, as GBDT::PredictRaw does. tests/test_fastforest.py holds the two
 * paths equal to the bit, and Model.load checks this one against the booster.
 *
 * Any words are safe: a leaf is found by the bit length of a word, which is at most the width
 * the values table is checked to have.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define K_ZERO ((double)1e-35f) /* LightGBM's kZeroThreshold is a float */

/* With caches cold (a tick a second), scoring is bound by memory, ~1000 cache lines: words
 * are kept at the model's width, the lines are prefetched as soon as their addresses are
 * known, and each tree's leaf values are 64-byte aligned (two lines at width 16). */
typedef struct {
    PyObject_HEAD
    Py_ssize_t features, trees, width;
    Py_ssize_t *start;  /* features + 1: feature f's thresholds are [start[f], start[f+1]) */
    double *thresholds; /* per feature, sorted */
    void *prefix;       /* feature f's row r (r <= its thresholds) is row start[f] + f + r */
    void *nan, *zero, *full; /* a row per feature; the trees' leaves */
    double *values; /* trees x width: a tree's leaf at a word's bit length - 1 */
    void *word; /* scratch for predict, which runs no Python code while it uses it */
} ForestObject;

static void forest_dealloc(ForestObject *self) {
    free(self->start); /* all from aligned_alloc */
    free(self->thresholds);
    free(self->prefix);
    free(self->nan);
    free(self->zero);
    free(self->full);
    free(self->values);
    free(self->word);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A copy of `b`, checked to hold n items of `size` bytes, on its own cache lines. */
static void *copy_of(const Py_buffer *b, Py_ssize_t n, Py_ssize_t size, const char *name) {
    if (b->len != n * size) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, b->len, n * size);
        return NULL;
    }
    void *out = aligned_alloc(64, (b->len + 64) / 64 * 64);
    if (!out)
        return PyErr_NoMemory();
    memcpy(out, b->buf, b->len);
    return out;
}

/* b: counts (int32, thresholds per feature), thresholds, prefix, nan, zero, full, values. */
static int forest_fill(ForestObject *self, Py_buffer *b) {
    Py_ssize_t w = self->width, f = b[0].len / 4;
    if (w != 16 && w != 32) {
        PyErr_Format(PyExc_ValueError, "width %zd: expected 16 or 32", w);
        return -1;
    }
    if (b[0].len % 4 || f == 0) {
        PyErr_SetString(PyExc_ValueError, "counts: expected one int32 per feature");
        return -1;
    }
    self->features = f;
    self->trees = b[5].len / (w / 8);
    self->start = aligned_alloc(64, ((f + 1) * sizeof(Py_ssize_t) + 64) / 64 * 64);
    if (!self->start) {
        PyErr_NoMemory();
        return -1;
    }
    const int32_t *count = b[0].buf;
    self->start[0] = 0;
    for (Py_ssize_t i = 0; i < f; i++) {
        if (count[i] < 0) {
            PyErr_Format(PyExc_ValueError, "feature %zd: %d thresholds", i, count[i]);
            return -1;
        }
        self->start[i + 1] = self->start[i] + count[i];
    }
    Py_ssize_t n = self->start[f], t = self->trees;
    if (t == 0 || (n + f) > PY_SSIZE_T_MAX / 4 / t) {
        PyErr_SetString(PyExc_ValueError, "no trees, or tables too large");
        return -1;
    }
    Py_ssize_t size = w / 8;
    if (b[6].len != t * (w + 1) * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "values: expected trees x (width + 1) float64");
        return -1;
    }
    if (!(self->thresholds = copy_of(&b[1], n, sizeof(double), "thresholds"))
        || !(self->prefix = copy_of(&b[2], (n + f) * t, size, "prefix"))
        || !(self->nan = copy_of(&b[3], f * t, size, "nan"))
        || !(self->zero = copy_of(&b[4], f * t, size, "zero"))
        || !(self->full = copy_of(&b[5], t, size, "full"))
        || !(self->values = aligned_alloc(64, t * w * sizeof(double)))
        || !(self->word = aligned_alloc(64, (t * size + 64) / 64 * 64))) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    /* Column 0, the leaf of a word without bits, is 0.0 in the NumPy tables: it is never
     * reached from real tables, and predict gives 0.0 for it without a lookup. */
    const double *v = b[6].buf;
    for (Py_ssize_t i = 0; i < t; i++)
        memcpy(self->values + i * w, v + i * (w + 1) + 1, w * sizeof(double));
    return 0;
}

static PyObject *forest_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"width", "counts", "thresholds", "prefix", "nan", "zero",
                             "full", "values", NULL};
    Py_ssize_t width;
    Py_buffer b[7] = {{0}};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ny*y*y*y*y*y*y*:Forest", kwlist, &width,
                                     &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6]))
        return NULL;
    ForestObject *self = (ForestObject *)type->tp_alloc(type, 0);
    if (self) {
        self->width = width;
        if (forest_fill(self, b)) {
            Py_DECREF(self);
            self = NULL;
        }
    }
    for (int i = 0; i < 7; i++)
        PyBuffer_Release(&b[i]);
    return (PyObject *)self;
}

/* Forest._row: the trees' words for feature f at x. */
static const void *row(const ForestObject *self, Py_ssize_t f, double x) {
    Py_ssize_t bytes = self->trees * (self->width / 8);
    if (x != x)
        return (const char *)self->nan + f * bytes;
    if (x >= -K_ZERO && x <= K_ZERO) /* a dense row drops what LightGBM calls zero */
        return (const char *)self->zero + f * bytes;
    const double *thr = self->thresholds + self->start[f];
    Py_ssize_t lo = 0, hi = self->start[f + 1] - self->start[f];
    while (lo < hi) { /* bisect_left: the thresholds < x, whose splits go right */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (thr[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (const char *)self->prefix + (self->start[f] + f + lo) * bytes;
}

static void prefetch(const void *p, Py_ssize_t bytes) {
    for (Py_ssize_t b = 0; b < bytes; b += 64)
        __builtin_prefetch((const char *)p + b);
}

#define INLINE static inline __attribute__((always_inline))
#define AHEAD 8 /* trees whose leaf values are prefetched ahead of the sums */

INLINE uint32_t at(const void *words, Py_ssize_t i, int wide) {
    return wide ? ((const uint32_t *)words)[i] : ((const uint16_t *)words)[i];
}

/* dst &= src over n bytes, 8 at a time: -O2 does not vectorize a loop of unknown length. */
static void and_into(char *dst, const char *src, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (uint64_t a, b; i + 8 <= n; i += 8) {
        memcpy(&a, dst + i, 8);
        memcpy(&b, src + i, 8);
        a &= b;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++)
        dst[i] &= src[i];
}

/* The scores from the rows (NULL for the candidate's feature, then one per candidate);
 * inlined once per width, so that `wide` is a constant. */
INLINE void sums(const ForestObject *self, const void **rows, Py_ssize_t nv, double *score,
                 int wide) {
    Py_ssize_t t = self->trees, w = self->width, bytes = t * (w / 8);
    void *word = self->word;
    /* The shared part: the trees' words ANDed over every feature but the candidate's. */
    memcpy(word, self->full, bytes);
    for (Py_ssize_t f = 0; f < self->features; f++)
        if (rows[f])
            and_into(word, rows[f], bytes);
    /* Tree by tree, so each candidate's sum is in LightGBM's order (from 0.0, held in
     * score[c]) and the candidates' additions do not wait on each other. */
    const void **cand = rows + self->features;
    for (Py_ssize_t i = 0; i < t; i++) {
        if (i + AHEAD < t)
            prefetch(self->values + (i + AHEAD) * w, w * sizeof(double));
        const double *leaf = self->values + i * w;
        for (Py_ssize_t c = 0; c < nv; c++) {
            uint32_t exit = at(word, i, wide) & at(cand[c], i, wide); /* its highest bit */
            score[c] += exit ? leaf[31 - __builtin_clz(exit)] : 0.0;
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
    }
    return 0;
}

/* METH_FASTCALL: no argument tuple, no format string to parse (once a tick, cold). */
static PyObject *forest_predict(ForestObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *base = NULL, *values = NULL, *out = NULL;
    Py_ssize_t feature, nf = self->features;
    double *x = NULL;
    const void **rows = NULL;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "predict() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if ((feature = PyNumber_AsSsize_t(args[1], PyExc_OverflowError)) == -1 && PyErr_Occurred())
        return NULL;
    if (feature < 0 || feature >= nf) {
        PyErr_Format(PyExc_ValueError, "feature %zd: the forest has %zd", feature, nf);
        return NULL;
    }
    /* The bisects' thresholds first: they are needed before any row's address is known. */
    prefetch(self->thresholds, self->start[nf] * sizeof(double));
    base = PySequence_Fast(args[0], "base must be a sequence of floats");
    values = base ? PySequence_Fast(args[2], "values must be a sequence of floats") : NULL;
    if (!values)
        goto done;
    if (PySequence_Fast_GET_SIZE(base) != nf) {
        PyErr_Format(PyExc_ValueError, "base has %zd features, the forest %zd",
                     PySequence_Fast_GET_SIZE(base), nf);
        goto done;
    }
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(values);
    /* x: the base row, then the candidates' values, then their scores */
    x = PyMem_Calloc(nf + 2 * nv, sizeof(double));
    rows = PyMem_Calloc(nf + nv, sizeof(*rows));
    if (!x || !rows) {
        PyErr_NoMemory();
        goto done;
    }
    double *cand = x + nf, *score = cand + nv;
    if (floats(base, x, feature) || floats(values, cand, -1))
        goto done;
    /* No Python code runs from here: self->word is this call's. */
    Py_ssize_t bytes = self->trees * (self->width / 8);
    for (Py_ssize_t f = 0; f < nf + nv; f++) {
        if (f != feature) {
            rows[f] = row(self, f < nf ? f : feature, x[f]);
            prefetch(rows[f], bytes);
        }
    }
    prefetch(self->values, AHEAD * self->width * sizeof(double));
    if (self->width == 32)
        sums(self, rows, nv, score, 1);
    else
        sums(self, rows, nv, score, 0);
    out = PyList_New(nv);
    for (Py_ssize_t c = 0; out && c < nv; c++) {
        PyObject *s = PyFloat_FromDouble(score[c]);
        if (!s) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, c, s);
    }
done:
    Py_XDECREF(base);
    Py_XDECREF(values);
    PyMem_Free(x);
    PyMem_Free(rows);
    return out;
}

static PyMethodDef forest_methods[] = {
    {"predict", (PyCFunction)(void (*)(void))forest_predict, METH_FASTCALL,
     "predict(base, feature, values) -> list[float]: scores of the rows equal to base except\n"
     "feature `feature`, which takes each of `values` (base[feature] is ignored)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mltune._fastforest.Forest",
    .tp_basicsize = sizeof(ForestObject),
    .tp_dealloc = (destructor)forest_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Forest(width, counts, thresholds, prefix, nan, zero, full, values): the tables\n"
              "of mltune.forest.Forest as bytes: int32 counts of thresholds per feature,\n"
              "float64 thresholds and values, words of `width` bits (16 or 32) for the rest.",
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
