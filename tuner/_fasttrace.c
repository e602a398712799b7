/* One pass from perf records to per-device access statistics.
 *
 * Why: decoding the records and summarizing them in Python cost ~1 us per event, 0.4-0.75 ms
 * of a ~1.7 ms tick. This does what PerfSource.decode (mltune.perf, mltune.ringbuf) and
 * summarize (mltune.tracing) do, with the same rules: records framed up to anything
 * malformed, the merged trace_pipe order (earliest time stamp, lowest CPU on a tie) cut at
 * `limit` bytes of text, then _Acc's statistics. The Python path is the reference:
 * tests/test_fasttrace.py holds the two equal. Ratios are left to Python (tracing._trace_stats)
 * on the exact integers returned here, so the floats are the same; the only float computed
 * here is the sum of log2 gaps, in the same order and with the same libm log2.
 *
 * Values are kept in 128 bits: fields are up to 64 bits, signed or not, and the Python
 * arithmetic on them (end + 1, gaps, page sums) never needs more. Squared run lengths take
 * up to 132 bits: their sum is kept in 192.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

__extension__ typedef __int128 i128; /* GCC and Clang on the 64-bit arches perf.py wires */
__extension__ typedef unsigned __int128 u128;

enum { GET_PAGES, FAULT, SYNC_RA, ASYNC_RA, KINDS };
enum { INO, DEV, INDEX, LAST_INDEX, RA_PAGES = 6 };  /* positions in ringbuf.FIELDS */
static const int NFIELDS[KINDS] = {4, 3, 10, 10};
#define MAXF 10
#define RECORD_LOST 2
#define RECORD_SAMPLE 9
#define NEAR_GAP 32     /* tracing.NEAR_GAP_PAGES */
#define STREAM_GAP 1024 /* tracing.STREAM_GAP_PAGES */
#define HEADS 8         /* open runs kept per inode (_Acc.stream) */
#define WIDE_TS (100000ULL * 1000000000ULL - 500) /* ringbuf._WIDE_TS */
#define MAXLAYOUTS 16

/* ringbuf.native_layouts(): per event id, its kind, fixed text lengths and fields. */
typedef struct {
    unsigned id, kind, nf;
    long fixed, text_fixed; /* Decoder.fixed (line_len); _CONTEXT + _FIXED[kind] (text_len) */
    Py_ssize_t need;        /* bytes the fields span from the raw data's start */
    struct { unsigned off, size, sign; } f[MAXF];
} Layout;

typedef struct {
    const unsigned char *buf;
    Py_ssize_t len, pos;
    int done;
    uint64_t ts; /* the decoded head event */
    const Layout *lay;
    long n;
    i128 v[MAXF];
} Cpu;

typedef struct {
    uint64_t ts;
    unsigned kind;
    i128 ino, dev, index, last, ra;
} Ev;

typedef struct {
    i128 dev;
    long long reads, faults, sync, asyn, seq, near, gaps, files, nra;
    double gap_sum;
    i128 pages, run_total;
    u128 sq_lo; /* sum of squared run lengths: sq_hi * 2**128 + sq_lo */
    uint64_t sq_hi;
    uint64_t first, last;
    i128 *ra; /* ra_pages of the device's readahead events (into the scratch pool) */
} Dev;

typedef struct {
    i128 dev, ino, window;
    int dev_i, nheads, used;
    i128 next[HEADS + 1], start[HEADS + 1]; /* open runs, oldest first */
} Ino;

/* Scratch reused across calls (the GIL is held throughout): no allocation per tick once
 * the arrays have grown to the window's size. */
static Ev *evs;
static Py_ssize_t evs_cap;
static Dev *devs;
static Py_ssize_t devs_cap;
static Ino *inos;
static Py_ssize_t inos_cap;
static Py_ssize_t *slots; /* hash of (dev, ino) → index in inos + 1; 0 is empty */
static Py_ssize_t slots_cap;
static i128 *ras;
static Py_ssize_t ras_cap;
static Cpu *cpus;
static Py_ssize_t cpus_cap;

static int grow(void **p, Py_ssize_t *cap, Py_ssize_t want, size_t item)
{
    if (want <= *cap)
        return 0;
    Py_ssize_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    void *q = PyMem_Realloc(*p, (size_t)n * item);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

static inline uint64_t rd(const unsigned char *p, unsigned size)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < size; i++) /* little-endian, as the decoders' structs */
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static inline i128 field(const unsigned char *p, unsigned size, unsigned sign)
{
    uint64_t x = rd(p, size);
    if (sign && size < 8 && (x >> (8 * size - 1)))
        return (i128)x - ((i128)1 << (8 * size));
    if (sign && size == 8)
        return (i128)(int64_t)x;
    return (i128)x;
}

/* Decimal digits of x >= 0. */
static inline int udigits(u128 x)
{
    int d = 1;
    while (x > UINT64_MAX) {
        x /= 10;
        d++;
    }
    for (uint64_t y = (uint64_t)x; y >= 10; y /= 10)
        d++;
    return d;
}

/* Length of Python's str(x) and format(x, "x"): a sign, then the magnitude. */
static inline int sdigits(i128 x) { return x < 0 ? 1 + udigits((u128)-x) : udigits((u128)x); }

static inline int xdigits(u128 x)
{
    int d = 1;
    while (x >>= 4)
        d++;
    return d;
}

static inline int sxdigits(i128 x) { return x < 0 ? 1 + xdigits((u128)-x) : xdigits((u128)x); }

/* ringbuf._s64: loff_t arithmetic wraps at 64 bits. */
static inline i128 s64(u128 x) { return (i128)(int64_t)(uint64_t)x; }

/* ringbuf.text_len. */
static long text_len(const Layout *L, uint64_t ts, const i128 *v)
{
    /* (ts + 500) // 1000 without overflowing 64 bits */
    uint64_t secs = (ts / 1000 + (ts % 1000 + 500) / 1000) / 1000000;
    long n = L->text_fixed + (secs >= 100000 ? udigits(secs) - 5 : 0);
    n += sdigits(v[DEV] >> 20) + sdigits(v[DEV] & 0xFFFFF) + sxdigits(v[INO]);
    if (L->kind == GET_PAGES)
        return n + sdigits(s64((u128)v[INDEX] << 12)) +
               sdigits(s64((((u128)v[LAST_INDEX] + 1) << 12) - 1));
    if (L->kind == FAULT)
        return n + sdigits(s64((u128)v[INDEX] << 12));
    for (int i = 2; i < MAXF; i++)
        n += sdigits(v[i]);
    return n;
}

/* ringbuf.line_len: text_len, except where its counted shortcut differs (an access event's
 * negative i_ino, possible only with a signed field, is counted without its sign). */
static long line_len(const Layout *L, uint64_t ts, const i128 *v)
{
    int devd = sdigits(v[DEV] >> 20) + sdigits(v[DEV] & 0xFFFFF);
    if (L->kind == GET_PAGES || L->kind == FAULT) {
        i128 a = v[INDEX] * 4096; /* fits: |index| < 2**64 */
        if (ts < WIDE_TS && (a >> 63) == 0 &&
            !(L->kind == GET_PAGES && (v[LAST_INDEX] >> 51) != 0)) {
            long n = L->fixed + devd + xdigits((u128)(v[INO] < 0 ? -v[INO] : v[INO])) +
                     udigits((u128)a);
            if (L->kind == GET_PAGES)
                n += udigits((u128)((v[LAST_INDEX] + 1) * 4096 - 1));
            return n;
        }
    } else if (ts < WIDE_TS && v[INO] >= 0) {
        long n = L->fixed + devd + xdigits((u128)v[INO]);
        for (int i = 2; i < MAXF; i++)
            n += sdigits(v[i]);
        return n;
    }
    return text_len(L, ts, v);
}

/* PerfSource._records, one event at a time: 1 with the CPU's next event in c, 0 at the end
 * of the buffer or at anything malformed (then the CPU is done). Lost records on the way
 * are added to *lost, as the generator adds them when it is advanced. */
static int next_event(Cpu *c, const Layout *lay, int nlay, u128 *lost)
{
    while (!c->done && c->pos + 8 <= c->len) {
        const unsigned char *p = c->buf + c->pos;
        uint32_t kind = (uint32_t)rd(p, 4);
        Py_ssize_t size = (Py_ssize_t)rd(p + 6, 2);
        if (size < 8 || c->pos + size > c->len)
            break;
        if (kind == RECORD_SAMPLE && size >= 22) {
            const Layout *L = NULL;
            if (rd(p + 16, 4) >= 2) {
                unsigned id = (unsigned)rd(p + 20, 2);
                for (int i = 0; i < nlay && L == NULL; i++)
                    if (lay[i].id == id)
                        L = &lay[i];
            }
            if (L != NULL) {
                /* struct.unpack_from checks against the buffer, not the record */
                if (c->pos + 20 + L->need > c->len)
                    break;
                for (unsigned i = 0; i < L->nf; i++)
                    c->v[i] = field(p + 20 + L->f[i].off, L->f[i].size, L->f[i].sign);
                c->ts = rd(p + 8, 8);
                c->lay = L;
                c->n = line_len(L, c->ts, c->v);
                c->pos += size;
                return 1;
            }
        } else if (kind == RECORD_LOST && size >= 24) {
            *lost += rd(p + 16, 8);
        }
        c->pos += size;
    }
    c->done = 1;
    return 0;
}

static int parse_layouts(PyObject *table, Layout *lay, int *nlay)
{
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(table);
    Py_ssize_t len = PyBytes_GET_SIZE(table), pos = 0;
    int n = 0;
    /* each: u16 id, u8 kind, u8 fields, u16 fixed, u16 text_fixed, then per field u16
     * offset, u8 size, u8 signed */
    while (pos + 8 <= len && n < MAXLAYOUTS) {
        Layout *L = &lay[n++];
        L->id = (unsigned)rd(p + pos, 2);
        L->kind = p[pos + 2];
        L->nf = p[pos + 3];
        L->fixed = (long)rd(p + pos + 4, 2);
        L->text_fixed = (long)rd(p + pos + 6, 2);
        pos += 8;
        if (L->kind >= KINDS || L->nf != (unsigned)NFIELDS[L->kind] || pos + 4 * L->nf > len)
            goto bad;
        L->need = 0;
        for (unsigned i = 0; i < L->nf; i++, pos += 4) {
            L->f[i].off = (unsigned)rd(p + pos, 2);
            L->f[i].size = p[pos + 2];
            L->f[i].sign = p[pos + 3];
            if (L->f[i].size != 1 && L->f[i].size != 2 && L->f[i].size != 4 && L->f[i].size != 8)
                goto bad;
            if ((Py_ssize_t)(L->f[i].off + L->f[i].size) > L->need)
                L->need = L->f[i].off + L->f[i].size;
        }
    }
    if (pos == len) {
        *nlay = n;
        return 0;
    }
bad:
    PyErr_SetString(PyExc_ValueError, "unreadable event layout table");
    return -1;
}

/* ringbuf.merge_capped: the CPUs' events in trace_pipe's order while their text fits. */
static Py_ssize_t merge(Py_ssize_t ncpu, const Layout *lay, int nlay, long long limit,
                        u128 *lost)
{
    Py_ssize_t nev = 0, live = 0;
    long long used = 0;
    for (Py_ssize_t i = 0; i < ncpu; i++)
        if (next_event(&cpus[i], lay, nlay, lost))
            cpus[live++] = cpus[i]; /* the heads that have an event, in CPU order */
    while (live > 0) {
        Py_ssize_t i = 0;
        for (Py_ssize_t j = 1; j < live; j++)
            if (cpus[j].ts < cpus[i].ts)
                i = j;
        Cpu *c = &cpus[i];
        used += c->n;
        if (used > limit)
            break;
        if (grow((void **)&evs, &evs_cap, nev + 1, sizeof(Ev)) < 0)
            return -1;
        Ev *e = &evs[nev++];
        e->ts = c->ts;
        e->kind = c->lay->kind;
        e->ino = c->v[INO];
        e->dev = c->v[DEV];
        e->index = c->v[INDEX];
        e->last = e->kind == GET_PAGES ? c->v[LAST_INDEX] : 0;
        e->ra = e->kind >= SYNC_RA ? c->v[RA_PAGES] : 0;
        if (!next_event(c, lay, nlay, lost)) {
            memmove(&cpus[i], &cpus[i + 1], (size_t)(live - i - 1) * sizeof(Cpu));
            live--;
        }
    }
    return nev;
}

static Py_ssize_t ndevs, ninos;

static Py_ssize_t dev_of(i128 dev)
{
    for (Py_ssize_t i = ndevs; i-- > 0;) /* few devices: the sampler filters on its targets */
        if (devs[i].dev == dev)
            return i;
    if (grow((void **)&devs, &devs_cap, ndevs + 1, sizeof(Dev)) < 0)
        return -1;
    Dev *d = &devs[ndevs];
    memset(d, 0, sizeof(*d));
    d->dev = dev;
    return ndevs++;
}

static inline size_t hash(i128 dev, i128 ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(ino >> 64) ^
                 (uint64_t)dev * 0xC2B2AE3D27D4EB4FULL ^ (uint64_t)(dev >> 64);
    return (size_t)(h ^ (h >> 29));
}

/* The inode (dev, ino): its index in inos, created if new; -1 on memory error. */
static Py_ssize_t ino_of(i128 dev, i128 ino, Py_ssize_t dev_i)
{
    if (2 * (ninos + 1) > slots_cap) { /* rehash into a table twice the size */
        Py_ssize_t cap = slots_cap ? 2 * slots_cap : 256;
        Py_ssize_t *s = PyMem_Calloc((size_t)cap, sizeof(*s));
        if (s == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < ninos; i++) {
            size_t h = hash(inos[i].dev, inos[i].ino) & (size_t)(cap - 1);
            while (s[h])
                h = (h + 1) & (size_t)(cap - 1);
            s[h] = i + 1;
        }
        PyMem_Free(slots);
        slots = s;
        slots_cap = cap;
    }
    size_t mask = (size_t)slots_cap - 1, h = hash(dev, ino) & mask;
    for (; slots[h]; h = (h + 1) & mask) {
        Ino *x = &inos[slots[h] - 1];
        if (x->ino == ino && x->dev == dev)
            return slots[h] - 1;
    }
    if (grow((void **)&inos, &inos_cap, ninos + 1, sizeof(Ino)) < 0)
        return -1;
    Ino *x = &inos[ninos];
    x->dev = dev;
    x->ino = ino;
    x->window = 0;
    x->dev_i = (int)dev_i;
    x->nheads = x->used = 0;
    slots[h] = ninos + 1;
    return ninos++;
}

static inline i128 iabs(i128 x) { return x < 0 ? -x : x; }

/* Adds r * r to the device's sum of squares; |r| < 2**66, so r * r < 2**132. */
static void add_square(Dev *d, i128 r)
{
    u128 a = (u128)iabs(r);
    uint64_t lo = (uint64_t)a, hi = (uint64_t)(a >> 64);
    u128 low = (u128)lo * lo, cross = (u128)lo * hi * 2; /* a*a = low + cross*2**64 + hi*hi*2**128 */
    u128 before = d->sq_lo;
    d->sq_lo += low;
    uint64_t carry = d->sq_lo < before;
    before = d->sq_lo;
    d->sq_lo += cross << 64;
    carry += d->sq_lo < before;
    d->sq_hi += carry + (uint64_t)(cross >> 64) + hi * hi;
}

/* tracing.summarize over evs[0:nev]: readahead first (each file's largest window), then
 * the accesses in order. 0 done, -1 error. */
static int summarize(Py_ssize_t nev)
{
    ndevs = ninos = 0;
    if (slots_cap)
        memset(slots, 0, (size_t)slots_cap * sizeof(*slots));
    if (grow((void **)&ras, &ras_cap, nev + 1, sizeof(i128)) < 0)
        return -1;
    Py_ssize_t nras = 0;
    for (Py_ssize_t k = 0; k < nev; k++) { /* devices by first readahead event */
        if (evs[k].kind >= SYNC_RA && dev_of(evs[k].dev) < 0)
            return -1;
    }
    for (Py_ssize_t d = 0; d < ndevs; d++) { /* each device's ra_pages, contiguous */
        devs[d].ra = ras + nras;
        for (Py_ssize_t k = 0; k < nev; k++) {
            Ev *e = &evs[k];
            if (e->kind < SYNC_RA || e->dev != devs[d].dev)
                continue;
            devs[d].ra[devs[d].nra++] = e->ra;
            nras++;
            if (e->kind == SYNC_RA)
                devs[d].sync++;
            else
                devs[d].asyn++;
            Py_ssize_t i = ino_of(e->dev, e->ino, d);
            if (i < 0)
                return -1;
            if (e->ra > inos[i].window)
                inos[i].window = e->ra;
        }
    }
    for (Py_ssize_t k = 0; k < nev; k++) {
        Ev *e = &evs[k];
        if (e->kind >= SYNC_RA)
            continue;
        Py_ssize_t di = dev_of(e->dev);
        if (di < 0)
            return -1;
        Dev *d = &devs[di];
        i128 start = e->index, end = start;
        if (e->kind == GET_PAGES) {
            end = e->last;
            d->reads++;
            d->pages += end - start + 1;
        } else {
            d->faults++;
        }
        if (d->reads + d->faults == 1)
            d->first = e->ts;
        d->last = e->ts;
        Py_ssize_t ii = ino_of(e->dev, e->ino, di);
        if (ii < 0)
            return -1;
        Ino *x = &inos[ii];
        if (!x->used) {
            x->used = 1;
            d->files++;
            x->next[0] = end + 1;
            x->start[0] = start;
            x->nheads = 1;
            continue;
        }
        int b = 0;
        for (int h = 1; h < x->nheads; h++)
            if (iabs(start - x->next[h]) < iabs(start - x->next[b]))
                b = h;
        i128 gap = start - x->next[b];
        d->gaps++;
        if (gap) /* Python: log2 of the int, converted to the nearest double */
            d->gap_sum += log2((double)(u128)(1 + iabs(gap)));
        if (gap >= -1 && gap <= NEAR_GAP)
            d->near++;
        else {
            i128 tol = 2 * x->window;
            tol = tol < NEAR_GAP ? NEAR_GAP : tol > STREAM_GAP ? STREAM_GAP : tol;
            if (!(gap >= -1 && gap <= tol)) { /* a new run; the oldest of 9 is closed */
                x->next[x->nheads] = end + 1;
                x->start[x->nheads] = start;
                if (++x->nheads > HEADS) {
                    i128 r = x->next[0] - x->start[0];
                    d->run_total += r;
                    add_square(d, r);
                    memmove(x->next, x->next + 1, HEADS * sizeof(i128));
                    memmove(x->start, x->start + 1, HEADS * sizeof(i128));
                    x->nheads = HEADS;
                }
                continue;
            }
        }
        d->seq++;
        if (end >= x->next[b])
            x->next[b] = end + 1;
    }
    for (Py_ssize_t i = 0; i < ninos; i++) { /* runs still open count too */
        Ino *x = &inos[i];
        for (int h = 0; h < x->nheads; h++) {
            i128 r = x->next[h] - x->start[h];
            devs[x->dev_i].run_total += r;
            add_square(&devs[x->dev_i], r);
        }
    }
    return 0;
}

static PyObject *from_i128(i128 x)
{
    if (x >= INT64_MIN && x <= INT64_MAX)
        return PyLong_FromLongLong((long long)x);
    unsigned char b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)((u128)x >> (8 * i));
    return _PyLong_FromByteArray(b, 16, 1, 1);
}

/* hi * 2**128 + lo */
static PyObject *from_u192(u128 lo, uint64_t hi)
{
    if (lo <= UINT64_MAX && !hi)
        return PyLong_FromUnsignedLongLong((unsigned long long)lo);
    unsigned char b[24];
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)(lo >> (8 * i));
    for (int i = 0; i < 8; i++)
        b[16 + i] = (unsigned char)(hi >> (8 * i));
    return _PyLong_FromByteArray(b, 24, 1, 0);
}

static int cmp_i128(const void *a, const void *b)
{
    i128 x = *(const i128 *)a, y = *(const i128 *)b;
    return (x > y) - (x < y);
}

static PyObject *result(u128 lost)
{
    PyObject *out = PyList_New(ndevs);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < ndevs; i++) {
        Dev *d = &devs[i];
        int any = d->reads + d->faults > 0;
        if (d->nra)
            qsort(d->ra, (size_t)d->nra, sizeof(i128), cmp_i128);
        PyObject *median = d->nra ? from_i128(d->ra[d->nra / 2]) : Py_NewRef(Py_None);
        /* the arguments of tracing._trace_stats, after the device */
        PyObject *t = Py_BuildValue(
            "(NLLLLLLLdNNNLNNN)", from_i128(d->dev), d->reads, d->faults, d->sync, d->asyn,
            d->seq, d->near, d->gaps, d->gap_sum, from_i128(d->pages),
            any ? PyLong_FromUnsignedLongLong(d->first) : Py_NewRef(Py_None),
            any ? PyLong_FromUnsignedLongLong(d->last) : Py_NewRef(Py_None), d->files, median,
            from_i128(d->run_total), from_u192(d->sq_lo, d->sq_hi));
        if (t == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, t);
    }
    return Py_BuildValue("(NN)", out, from_u192(lost, 0));
}

static PyObject *summarize_records(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *bufs, *table, *limit_obj;
    if (!PyArg_ParseTuple(args, "OSO!:summarize_records", &bufs, &table, &PyLong_Type,
                          &limit_obj))
        return NULL;
    int overflow;
    long long limit = PyLong_AsLongLongAndOverflow(limit_obj, &overflow);
    if (overflow) /* past 2**63 bytes of text: no limit; below -2**63: nothing kept */
        limit = overflow > 0 ? LLONG_MAX : -1;
    else if (limit == -1 && PyErr_Occurred())
        return NULL;
    Layout lay[MAXLAYOUTS];
    int nlay;
    if (parse_layouts(table, lay, &nlay) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(bufs, "bufs must be a sequence of bytes");
    if (seq == NULL)
        return NULL;
    Py_ssize_t ncpu = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = NULL;
    if (grow((void **)&cpus, &cpus_cap, ncpu + 1, sizeof(Cpu)) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < ncpu; i++) {
        PyObject *b = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(b)) {
            PyErr_SetString(PyExc_TypeError, "bufs must be a sequence of bytes");
            goto done;
        }
        cpus[i].buf = (const unsigned char *)PyBytes_AS_STRING(b);
        cpus[i].len = PyBytes_GET_SIZE(b);
        cpus[i].pos = 0;
        cpus[i].done = 0;
    }
    u128 lost = 0;
    Py_ssize_t nev = merge(ncpu, lay, nlay, limit, &lost);
    if (nev < 0)
        goto done;
    if (summarize(nev) < 0)
        goto done;
    out = result(lost);
done:
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"summarize_records", summarize_records, METH_VARARGS,
     "summarize_records(bufs, layouts, limit) -> ([(dev, *counts), ...], lost)\n\n"
     "Per-device counts of the events of the perf records in bufs (one bytes per CPU) that\n"
     "fit in limit bytes of trace_pipe text (the arguments of tracing._trace_stats), and\n"
     "the records the kernel reported lost on the way."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_fasttrace", .m_size = -1, .m_methods = methods,
    .m_doc = "perf records to per-device access statistics in one pass (mltune.tracing)"};

PyMODINIT_FUNC PyInit__fasttrace(void) { return PyModule_Create(&module); }
