/* Switch per-CPU perf event groups on and off from a thread on each CPU.
 *
 * Why: PERF_EVENT_IOC_ENABLE/DISABLE on an event bound to another CPU is an IPI to that CPU,
 * and the ioctl waits until the function has run there (kernel/events/core.c,
 * event_function_call -> cpu_function_call). In this 2-vCPU VM that wait was 70-250 us per
 * ioctl (the longest when the other vCPU was busy), against 13-18 us for the event of the
 * CPU the caller runs on: two of the four ioctls of a tick cost ~0.25 ms of its ~1 ms, and a
 * host with N CPUs would pay 2 (N - 1) such waits a tick, one after the other.
 *
 * Here each CPU has a thread pinned to it that waits on a pipe and issues its group's ioctl
 * locally. switch() switches the group of the CPU it runs on itself, writes one byte for
 * every other CPU and returns: the caller neither sends nor waits for an IPI. The threads
 * never take the GIL. An ioctl's error is kept and raised by the next switch() (or read from
 * `errno`); a thread that could not be pinned still works, as a plain caller would (with
 * the IPI).
 *
 * What the caller gives up: the switch is asynchronous. A window starts on each CPU when
 * its thread wakes (tens of us later), and records can land after a disable() returned,
 * before the thread ran: PerfSource drops whatever is in a buffer when the next window
 * starts (perf.PerfSource.switch).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PERF_ENABLE 0x2400  /* PERF_EVENT_IOC_ENABLE: _IO('$', 0) */
#define PERF_DISABLE 0x2401 /* PERF_EVENT_IOC_DISABLE: _IO('$', 1) */

typedef struct {
    int fd, cpu, rd, wr;
    int started;
    pthread_t thread;
    atomic_int err; /* errno of the last failed ioctl, 0 if none since it was raised */
} Worker;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Worker *w;
} Switcher;

static void *run(void *arg) {
    Worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort, see above */
    char name[16]; /* what top -H and /proc/<pid>/task/<tid>/comm show */
    snprintf(name, sizeof name, "mltune-cpu%d", w->cpu);
    pthread_setname_np(pthread_self(), name);
    for (;;) {
        char c;
        ssize_t got = read(w->rd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || c == 'q')
            return NULL;
        if (ioctl(w->fd, c == 'e' ? PERF_ENABLE : PERF_DISABLE, 0) < 0)
            atomic_store(&w->err, errno);
    }
}

static void stop(Switcher *s) {
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Worker *w = &s->w[i];
        if (w->started) {
            char q = 'q';
            while (write(w->wr, &q, 1) < 0 && errno == EINTR)
                ;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s->n; i++)
        if (s->w[i].started)
            pthread_join(s->w[i].thread, NULL);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Worker *w = &s->w[i];
        w->started = 0;
        if (w->rd >= 0)
            close(w->rd);
        if (w->wr >= 0)
            close(w->wr);
        w->rd = w->wr = -1;
    }
}

static int take_error(Switcher *s) {
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int e = atomic_exchange(&s->w[i].err, 0);
        if (e) {
            errno = e;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    return 0;
}

static int init(Switcher *s, PyObject *args, PyObject *kw) {
    static char *names[] = {"fds", "cpus", NULL};
    PyObject *fds, *cpus;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", names, &fds, &cpus))
        return -1;
    if (s->w) {
        PyErr_SetString(PyExc_RuntimeError, "Switcher already initialised");
        return -1;
    }
    Py_ssize_t n = PySequence_Size(fds);
    if (n < 0)
        return -1;
    if (PySequence_Size(cpus) != n) {
        PyErr_SetString(PyExc_ValueError, "one CPU per descriptor");
        return -1;
    }
    s->w = PyMem_Calloc(n ? n : 1, sizeof(Worker));
    if (!s->w) {
        PyErr_NoMemory();
        return -1;
    }
    s->n = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        s->w[i].rd = s->w[i].wr = -1;
        PyObject *f = PySequence_GetItem(fds, i), *c = PySequence_GetItem(cpus, i);
        s->w[i].fd = f ? (int)PyLong_AsLong(f) : -1;
        s->w[i].cpu = c ? (int)PyLong_AsLong(c) : -1;
        Py_XDECREF(f);
        Py_XDECREF(c);
        if (PyErr_Occurred())
            return -1;
        if (s->w[i].cpu < 0 || s->w[i].cpu >= CPU_SETSIZE) {
            PyErr_Format(PyExc_ValueError, "cpu %d out of range", s->w[i].cpu);
            return -1;
        }
    }
    /* The threads block every signal: SIGINT and SIGTERM stay the main thread's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    /* A thread needs little stack: 64 KiB, not the default 8 MiB of address space each. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 16);
    int err = 0;
    for (Py_ssize_t i = 0; i < n && !err; i++) {
        Worker *w = &s->w[i];
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            err = errno;
            break;
        }
        w->rd = p[0];
        w->wr = p[1];
        err = pthread_create(&w->thread, &attr, run, w);
        w->started = !err;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        stop(s);
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *do_switch(Switcher *s, PyObject *on) {
    int yes = PyObject_IsTrue(on);
    if (yes < 0 || take_error(s) < 0)
        return NULL;
    char c = yes ? 'e' : 'd';
    /* The group of the CPU this runs on is switched here: a local ioctl costs what the
     * pipe write would, and waking that CPU's thread would preempt this one. */
    int here = sched_getcpu();
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Worker *w = &s->w[i];
        if (!w->started) {
            PyErr_SetString(PyExc_ValueError, "Switcher is closed");
            return NULL;
        }
        if (w->cpu == here) {
            if (ioctl(w->fd, yes ? PERF_ENABLE : PERF_DISABLE, 0) < 0)
                return PyErr_SetFromErrno(PyExc_OSError);
            continue;
        }
        while (write(w->wr, &c, 1) < 0) {
            if (errno != EINTR)
                return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *do_close(Switcher *s, PyObject *unused) {
    (void)unused;
    stop(s);
    Py_RETURN_NONE;
}

static PyObject *get_errno(Switcher *s, void *unused) {
    (void)unused;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        int e = atomic_load(&s->w[i].err);
        if (e)
            return PyLong_FromLong(e);
    }
    return PyLong_FromLong(0);
}

static void dealloc(Switcher *s) {
    if (s->w) {
        stop(s);
        PyMem_Free(s->w);
    }
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef switcher_methods[] = {
    {"switch", (PyCFunction)do_switch, METH_O,
     "switch(on): queue PERF_EVENT_IOC_ENABLE (on) or DISABLE on every CPU's thread and "
     "return; raises OSError for an ioctl that failed since the last call."},
    {"close", (PyCFunction)do_close, METH_NOARGS,
     "Stop and join the threads (queued switches are done first). The descriptors stay open."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef switcher_getset[] = {
    {"errno", (getter)get_errno, NULL, "errno of a failed ioctl not yet raised, else 0", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SwitcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mltune._perfswitch.Switcher",
    .tp_basicsize = sizeof(Switcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Switcher(fds, cpus): a thread pinned to cpus[i] switches the perf group led "
              "by fds[i].",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)init,
    .tp_dealloc = (destructor)dealloc,
    .tp_methods = switcher_methods,
    .tp_getset = switcher_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_perfswitch", .m_size = -1,
};

PyMODINIT_FUNC PyInit__perfswitch(void) {
    if (PyType_Ready(&SwitcherType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&SwitcherType);
    if (PyModule_AddObject(m, "Switcher", (PyObject *)&SwitcherType) < 0) {
        Py_DECREF(&SwitcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
