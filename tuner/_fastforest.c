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

typedef struct {
    PyObject_HEAD
    Py_ssize_t features, trees, width;
    Py_ssize_t *start;  /* features + 1: feature f's thresholds are [start[f], start[f+1]) */
    double *thresholds; /* per feature, sorted */
    uint32_t *prefix;   /* feature f's row r (r <= its thresholds) is row start[f] + f + r */
    uint32_t *nan, *zero, *full; /* a row per feature; the tree's leaves */
    double *values;              /* trees x (width + 1): a tree's leaf at a word's bit length */
} ForestObject;

static void forest_dealloc(ForestObject *self) {
    PyMem_Free(self->start);
    PyMem_Free(self->thresholds);
    PyMem_Free(self->prefix);
    PyMem_Free(self->nan);
    PyMem_Free(self->zero);
    PyMem_Free(self->full);
    PyMem_Free(self->values);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* `words` words of width/8 bytes each, widened to uint32 (one loop for both widths). */
static uint32_t *words_of(const Py_buffer *b, Py_ssize_t words, Py_ssize_t width,
                          const char *name) {
    if (b->len != words * (width / 8)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, b->len,
                     words * (width / 8));
        return NULL;
    }
    uint32_t *out = PyMem_Malloc((words ? words : 1) * sizeof(uint32_t));
    if (!out)
        return (uint32_t *)PyErr_NoMemory();
    if (width == 32) {
        memcpy(out, b->buf, b->len);
    } else {
        const uint16_t *in = b->buf;
        for (Py_ssize_t i = 0; i < words; i++)
            out[i] = in[i];
    }
    return out;
}

static double *doubles_of(const Py_buffer *b, Py_ssize_t n, const char *name) {
    if (b->len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, b->len,
                     n * (Py_ssize_t)sizeof(double));
        return NULL;
    }
    double *out = PyMem_Malloc((n ? n : 1) * sizeof(double));
    if (!out)
        return (double *)PyErr_NoMemory();
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
    self->start = PyMem_Malloc((f + 1) * sizeof(Py_ssize_t));
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
    self->thresholds = doubles_of(&b[1], n, "thresholds");
    self->prefix = self->thresholds ? words_of(&b[2], (n + f) * t, w, "prefix") : NULL;
    self->nan = self->prefix ? words_of(&b[3], f * t, w, "nan") : NULL;
    self->zero = self->nan ? words_of(&b[4], f * t, w, "zero") : NULL;
    self->full = self->zero ? words_of(&b[5], t, w, "full") : NULL;
    self->values = self->full ? doubles_of(&b[6], t * (w + 1), "values") : NULL;
    return self->values ? 0 : -1;
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

/* Forest._row: the words of the trees for feature f at x. */
static const uint32_t *row(const ForestObject *self, Py_ssize_t f, double x) {
    if (x != x)
        return self->nan + f * self->trees;
    if (x >= -K_ZERO && x <= K_ZERO) /* a dense row drops what LightGBM calls zero */
        return self->zero + f * self->trees;
    const double *thr = self->thresholds + self->start[f];
    Py_ssize_t lo = 0, hi = self->start[f + 1] - self->start[f];
    while (lo < hi) { /* bisect_left: the thresholds < x, whose splits go right */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (thr[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return self->prefix + (self->start[f] + f + lo) * self->trees;
}

/* The exit leaf's column: the word's bit length (as np.frexp's exponent; 0 for 0). */
static inline int bit_length(uint32_t w) { return w ? 32 - __builtin_clz(w) : 0; }

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

static PyObject *forest_predict(ForestObject *self, PyObject *args) {
    PyObject *base_arg, *values_arg, *base = NULL, *values = NULL, *out = NULL;
    Py_ssize_t feature;
    double *x = NULL;
    uint32_t *word = NULL;
    const uint32_t **rows = NULL;
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
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(values), t = self->trees, w1 = self->width + 1;
    /* x: the base row, then the candidates' values, then their scores */
    x = PyMem_Calloc(self->features + 2 * nv, sizeof(double));
    word = PyMem_Malloc(t * sizeof(uint32_t));
    rows = PyMem_Malloc((nv ? nv : 1) * sizeof(*rows));
    if (!x || !word || !rows) {
        PyErr_NoMemory();
        goto done;
    }
    double *cand = x + self->features, *score = cand + nv;
    if (floats(base, x, feature) || floats(values, cand, -1))
        goto done;
    /* The shared part: the trees' words ANDed over every feature but the candidate's. */
    memcpy(word, self->full, t * sizeof(uint32_t));
    for (Py_ssize_t f = 0; f < self->features; f++) {
        if (f == feature)
            continue;
        const uint32_t *r = row(self, f, x[f]);
        for (Py_ssize_t i = 0; i < t; i++)
            word[i] &= r[i];
    }
    for (Py_ssize_t c = 0; c < nv; c++)
        rows[c] = row(self, feature, cand[c]);
    /* Tree by tree, so each candidate's sum is in LightGBM's order (from 0.0, held in
     * score[c]) and the candidates' additions do not wait on each other. */
    for (Py_ssize_t i = 0; i < t; i++) {
        const double *leaf = self->values + i * w1;
        for (Py_ssize_t c = 0; c < nv; c++)
            score[c] += leaf[bit_length(word[i] & rows[c][i])];
    }
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
    PyMem_Free(word);
    PyMem_Free(rows);
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
