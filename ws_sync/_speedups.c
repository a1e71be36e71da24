/* The hot paths of tracking, in C: a synced attribute write, a tracked list's
 * append and item assignment, a tracked dict's item assignment.
 *
 * Each function handles the common case (an atomic value replacing an atomic
 * value, a key already in the change log, an append) and hands everything
 * else to the Python method that holds the whole logic (`_ws_append`,
 * `_ws_setitem`, `ObjNode.assign`, ...). The Python classes keep their state in
 * `__slots__`; `configure()` reads the slots' offsets once, so the fast paths
 * read that state directly. `ws_sync/tracking.py` is the reference: with
 * WS_SYNC_PURE=1 it runs alone, and the tests run both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyObject *RESET, *MISSING, *NODE_KEY;
static PyObject *TrackedList, *TrackedDict, *ObjNode;
static PyObject *s_add, *s_replace, *s_remove;
static PyObject *s_ws_append, *s_ws_setitem, *s_ws_delitem, *s_ws_record, *s_ws_delete;
static PyObject *s_assign, *s_ws_set;
static PyObject *call_locked; /* threads.call_locked */
static int threaded;            /* a handler runs in a worker thread (see threads.py) */

static Py_ssize_t list_parents, list_log, list_tail, list_dirty, dict_parents, dict_log, dict_dirty;
static Py_ssize_t node_log, node_fields, node_owner_id, node_parents, node_dirty;
static Py_ssize_t link_ref;
static Py_ssize_t list_full, dict_full, node_full;
static PyObject *Link;
static PyObject *s_ws_parents, *s_ws_dirty, *s_ws_log, *s_ws_full;
static PyObject *archive, *roots_of; /* patch.archive, patch.roots_of */

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static inline int
is_atomic(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type ||
           t == &PyBool_Type || v == Py_None || t == &PyBytes_Type;
}

/* `node._ws_parents` is truthy: the node sits somewhere, so it logs. */
static inline int
has_parents(PyObject *parents)
{
    return parents != NULL && PyDict_Check(parents) && PyDict_GET_SIZE(parents) > 0;
}

static inline void
set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject *old = SLOT(obj, offset);
    Py_INCREF(value);
    SLOT(obj, offset) = value;
    Py_XDECREF(old);
}

static int
call_method_status(PyObject *self, PyObject *name, PyObject *a, PyObject *b)
{
    PyObject *r = PyObject_CallMethodObjArgs(self, name, a, b, NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* touch and key_record: see tracking.py, which holds the same in Python     */

/* Where a node keeps its parents, dirty children and log. Known classes are
   read by slot offset; any other node (the root) by attribute. */
typedef struct {
    Py_ssize_t parents, dirty, log, full; /* 0: by attribute */
} Layout;

static Layout
layout_of(PyObject *node)
{
    PyObject *t = (PyObject *)Py_TYPE(node);
    Layout l = {0, 0, 0, 0};
    if (t == TrackedList)
        l = (Layout){list_parents, list_dirty, list_log, list_full};
    else if (t == TrackedDict)
        l = (Layout){dict_parents, dict_dirty, dict_log, dict_full};
    else if (t == ObjNode)
        l = (Layout){node_parents, node_dirty, node_log, node_full};
    return l;
}

/* New reference (None for an empty slot), NULL on error. */
static PyObject *
get_field(PyObject *node, Py_ssize_t offset, PyObject *name)
{
    if (offset == 0)
        return PyObject_GetAttr(node, name);
    PyObject *v = SLOT(node, offset);
    return Py_NewRef(v == NULL ? Py_None : v);
}

static int
set_field(PyObject *node, Py_ssize_t offset, PyObject *name, PyObject *value)
{
    if (offset == 0)
        return PyObject_SetAttr(node, name, value);
    set_slot(node, offset, value);
    return 0;
}

static int
truthy(PyObject *v)
{
    if (v == Py_None)
        return 0;
    if (PyDict_CheckExact(v))
        return PyDict_GET_SIZE(v) > 0;
    if (PyList_CheckExact(v))
        return PyList_GET_SIZE(v) > 0;
    return PyObject_IsTrue(v);
}

/* Put `child` (keyed by its id) in the dirty set of parent `p`; 1 when the
   mark is new and p had no log (then p's own parents need it too). */
static int
mark_dirty(PyObject *p, PyObject *nid, PyObject *child)
{
    Layout l = layout_of(p);
    PyObject *dirty = get_field(p, l.dirty, s_ws_dirty);
    if (dirty == NULL)
        return -1;
    int status = 0;
    if (PyDict_Check(dirty) && PyDict_GET_SIZE(dirty) > 0) {
        int has = PyDict_Contains(dirty, nid);
        status = has < 0 ? -1 : has ? 0 : PyDict_SetItem(dirty, nid, child);
        Py_DECREF(dirty);
        return status;
    }
    Py_DECREF(dirty);
    PyObject *fresh = PyDict_New();
    if (fresh == NULL || PyDict_SetItem(fresh, nid, child) < 0 ||
        set_field(p, l.dirty, s_ws_dirty, fresh) < 0) {
        Py_XDECREF(fresh);
        return -1;
    }
    Py_DECREF(fresh);
    PyObject *log = get_field(p, l.log, s_ws_log);
    if (log == NULL)
        return -1;
    int has_log = truthy(log);
    Py_DECREF(log);
    return has_log < 0 ? -1 : !has_log;
}

static PyObject *
touch(PyObject *module, PyObject *node)
{
    PyObject *stack = PyList_New(0);
    if (stack == NULL || PyList_Append(stack, node) < 0)
        goto error;
    while (PyList_GET_SIZE(stack) > 0) {
        Py_ssize_t top = PyList_GET_SIZE(stack) - 1;
        PyObject *n = Py_NewRef(PyList_GET_ITEM(stack, top));
        if (PyList_SetSlice(stack, top, top + 1, NULL) < 0) {
            Py_DECREF(n);
            goto error;
        }
        Layout l = layout_of(n);
        PyObject *parents = get_field(n, l.parents, s_ws_parents);
        if (parents == NULL) {
            Py_DECREF(n);
            goto error;
        }
        if (!PyDict_Check(parents) || PyDict_GET_SIZE(parents) == 0) {
            Py_DECREF(parents);
            Py_DECREF(n);
            continue;
        }
        PyObject *nid = PyLong_FromVoidPtr(n);
        int failed = nid == NULL;
        Py_ssize_t pos = 0;
        PyObject *key, *link;
        /* no Python code runs below (weak references, slots, dicts), so the
           parents dict cannot change while it is walked */
        while (!failed && PyDict_Next(parents, &pos, &key, &link)) {
            PyObject *ref = (PyObject *)Py_TYPE(link) == Link ? SLOT(link, link_ref) : NULL;
            PyObject *p = ref ? PyObject_CallNoArgs(ref) : NULL;
            if (ref == NULL) {
                PyObject *r = PyObject_GetAttrString(link, "ref");
                p = r ? PyObject_CallNoArgs(r) : NULL;
                Py_XDECREF(r);
            }
            if (p == NULL) {
                failed = 1;
                break;
            }
            if (p != Py_None) {
                int up = mark_dirty(p, nid, n);
                if (up < 0 || (up > 0 && PyList_Append(stack, p) < 0))
                    failed = 1;
            }
            Py_DECREF(p);
        }
        Py_DECREF(parents);
        Py_XDECREF(nid);
        Py_DECREF(n);
        if (failed)
            goto error;
    }
    Py_DECREF(stack);
    Py_RETURN_NONE;
error:
    Py_XDECREF(stack);
    return NULL;
}

/* key_record(node, key, existed): the first write of a key decides add,
   replace or remove; the first entry of a log marks the node dirty upwards. */
static int
record_key(PyObject *node, PyObject *key, PyObject *existed)
{
    Layout l = layout_of(node);
    PyObject *log = get_field(node, l.log, s_ws_log);
    if (log == NULL)
        return -1;
    int status = 0;
    if (log == Py_None) {
        PyObject *fresh = PyDict_New();
        if (fresh == NULL || PyDict_SetItem(fresh, key, existed) < 0 ||
            set_field(node, l.log, s_ws_log, fresh) < 0)
            status = -1;
        Py_XDECREF(fresh);
        if (status == 0) {
            PyObject *dirty = get_field(node, l.dirty, s_ws_dirty);
            int has_dirty = dirty ? truthy(dirty) : -1;
            Py_XDECREF(dirty);
            if (has_dirty < 0)
                status = -1;
            else if (!has_dirty) {
                PyObject *r = touch(NULL, node);
                status = r == NULL ? -1 : 0;
                Py_XDECREF(r);
            }
        }
    }
    else if (log != RESET && PyDict_Check(log)) {
        int has = PyDict_Contains(log, key);
        status = has < 0 ? -1 : has ? 0 : PyDict_SetItem(log, key, existed);
    }
    Py_DECREF(log);
    return status;
}

static PyObject *
key_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "key_record(node, key, existed)");
        return NULL;
    }
    PyObject *existed = PyObject_IsTrue(args[2]) ? Py_True : Py_False;
    if (record_key(args[0], args[1], existed) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* consume: see patch.consume, which holds the same in Python                */

typedef struct {
    PyObject *node; /* strong */
    PyObject *parent; /* borrowed: only its address is used */
    int exclusive;
} Pending;

typedef struct {
    Pending *items;
    Py_ssize_t n, cap;
} Stack;

static int
stack_push(Stack *st, PyObject *node, PyObject *parent, int exclusive)
{
    if (st->n == st->cap) {
        Py_ssize_t cap = st->cap ? st->cap * 2 : 16;
        Pending *items = PyMem_Realloc(st->items, cap * sizeof(Pending));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->items = items;
        st->cap = cap;
    }
    st->items[st->n++] = (Pending){Py_NewRef(node), parent, exclusive};
    return 0;
}

/* `full` without `root`, or None when nothing is left. New reference. */
static PyObject *
without(PyObject *full, PyObject *root)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    PyObject *it = PyObject_GetIter(full), *r;
    if (it == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    while ((r = PyIter_Next(it)) != NULL) {
        int status = r == root ? 0 : PyList_Append(out, r);
        Py_DECREF(r);
        if (status < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    if (PyList_GET_SIZE(out) == 0) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* Other roots that reach `node` must resend it whole (patch.consume). */
static int
owe_others(PyObject *node, Layout l, PyObject *root)
{
    PyObject *roots = PyObject_CallOneArg(roots_of, node);
    if (roots == NULL)
        return -1;
    PyObject *others = without(roots, root);
    Py_DECREF(roots);
    if (others == NULL)
        return -1;
    int status = 0;
    if (others != Py_None) {
        PyObject *full = get_field(node, l.full, s_ws_full);
        if (full == NULL) {
            Py_DECREF(others);
            return -1;
        }
        if (!PyList_Check(full)) {
            Py_SETREF(full, PyList_New(0));
            if (full == NULL) {
                Py_DECREF(others);
                return -1;
            }
        }
        for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(others); i++) {
            PyObject *r = PyList_GET_ITEM(others, i);
            int known = 0;
            for (Py_ssize_t j = 0; j < PyList_GET_SIZE(full); j++)
                known |= PyList_GET_ITEM(full, j) == r;
            if (!known)
                status = PyList_Append(full, r);
        }
        if (status == 0)
            status = set_field(node, l.full, s_ws_full, full);
        Py_DECREF(full);
    }
    Py_DECREF(others);
    return status;
}

static int
consume_one(Stack *st, Pending e, PyObject *root)
{
    PyObject *node = e.node;
    Layout l = layout_of(node);
    PyObject *dirty = NULL, *log = NULL, *full = NULL, *parents = NULL;
    int status = -1;
    if ((dirty = get_field(node, l.dirty, s_ws_dirty)) == NULL ||
        (log = get_field(node, l.log, s_ws_log)) == NULL ||
        (full = get_field(node, l.full, s_ws_full)) == NULL)
        goto done;
    int has_dirty = truthy(dirty), has_full = truthy(full);
    if (has_dirty < 0 || has_full < 0)
        goto done;
    if (log == Py_None && !has_dirty && !has_full) {
        status = 0;
        goto done;
    }
    if (log != Py_None && (PyObject *)Py_TYPE(node) == TrackedList) {
        set_slot(node, list_tail, Py_None); /* appends move nothing: no history needed */
        PyObject *r = PyObject_CallFunctionObjArgs(archive, node, log, NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    if (set_field(node, l.log, s_ws_log, Py_None) < 0 ||
        set_field(node, l.dirty, s_ws_dirty, Py_None) < 0)
        goto done;
    if (has_full) {
        PyObject *rest = without(full, root);
        if (rest == NULL)
            goto done;
        int failed = set_field(node, l.full, s_ws_full, rest) < 0;
        Py_DECREF(rest);
        if (failed)
            goto done;
    }
    if ((parents = get_field(node, l.parents, s_ws_parents)) == NULL)
        goto done;
    int exclusive = e.exclusive;
    if (exclusive && PyDict_Check(parents) && PyDict_GET_SIZE(parents) > 0) {
        exclusive = 0;
        if (PyDict_GET_SIZE(parents) == 1) {
            PyObject *pid = PyLong_FromVoidPtr(e.parent);
            exclusive = pid ? PyDict_Contains(parents, pid) : -1;
            Py_XDECREF(pid);
            if (exclusive < 0)
                goto done;
        }
    }
    if (!exclusive && (log != Py_None || has_dirty) && owe_others(node, l, root) < 0)
        goto done;
    if (has_dirty && PyDict_Check(dirty)) {
        Py_ssize_t pos = 0;
        PyObject *key, *child;
        while (PyDict_Next(dirty, &pos, &key, &child))
            if (stack_push(st, child, node, exclusive) < 0)
                goto done;
    }
    status = 0;
done:
    Py_XDECREF(dirty);
    Py_XDECREF(log);
    Py_XDECREF(full);
    Py_XDECREF(parents);
    return status;
}

static PyObject *
consume(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || archive == NULL) {
        PyErr_SetString(PyExc_TypeError, "consume(start, root) after configure_patch()");
        return NULL;
    }
    PyObject *root = args[1];
    Stack st = {NULL, 0, 0};
    int status = stack_push(&st, args[0], root, 1);
    while (status == 0 && st.n > 0) {
        Pending e = st.items[--st.n];
        status = consume_one(&st, e, root);
        Py_DECREF(e.node);
    }
    while (st.n > 0)
        Py_DECREF(st.items[--st.n].node);
    PyMem_Free(st.items);
    if (status < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
configure_patch(PyObject *module, PyObject *args)
{
    PyObject *a, *r;
    if (!PyArg_ParseTuple(args, "OO:configure_patch", &a, &r))
        return NULL;
    Py_XSETREF(archive, Py_NewRef(a));
    Py_XSETREF(roots_of, Py_NewRef(r));
    Py_RETURN_NONE;
}

/* While threaded, every write takes the Python path under threads.LOCK. */
static PyObject *
locked(PyObject *self, PyObject *name, PyObject *a, PyObject *b)
{
    PyObject *method = PyObject_GetAttr(self, name);
    if (method == NULL)
        return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(call_locked, method, a, b, NULL);
    Py_DECREF(method);
    return r;
}

static int
locked_status(PyObject *self, PyObject *name, PyObject *a, PyObject *b)
{
    PyObject *r = locked(self, name, a, b);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Item assignment or deletion by the Python method that holds the whole
   logic (`_ws_setitem` / `_ws_delitem`), under the lock while threaded. */
static int
python_ass(PyObject *self, PyObject *key, PyObject *value)
{
    PyObject *name = value == NULL ? s_ws_delitem : s_ws_setitem;
    if (threaded)
        return locked_status(self, name, key, value);
    return call_method_status(self, name, key, value);
}

/* ------------------------------------------------------------------------ */
/* ListBase: the C half of TrackedList                                       */

static int
list_log_op(PyObject *self, PyObject *op)
{
    /* Append `op` to the list's log, or hand it to `_ws_record` when there is
       no log yet (the first op also marks the list dirty upwards). */
    PyObject *log = SLOT(self, list_log);
    if (log == NULL || log == Py_None)
        return call_method_status(self, s_ws_record, op, NULL);
    if (log == RESET)
        return 0;
    return PyList_Append(log, op);
}

/* Appending a leaf to a list that logs this round only notes where the run
   of appends starts (`_ws_tail`); `TrackedList._ws_flush` writes the run into
   the log before any other op or any reader sees it. */
static PyObject *
list_append(PyObject *self, PyObject *value)
{
    if (threaded)
        return locked(self, s_ws_append, value, NULL);
    if ((PyObject *)Py_TYPE(self) != TrackedList || !is_atomic(value))
        return PyObject_CallMethodOneArg(self, s_ws_append, value);
    if (has_parents(SLOT(self, list_parents))) {
        PyObject *log = SLOT(self, list_log);
        if (log == NULL || !PyList_CheckExact(log)) {
            if (log != RESET) /* the first op of a round marks the list dirty */
                return PyObject_CallMethodOneArg(self, s_ws_append, value);
        }
        else {
            PyObject *tail = SLOT(self, list_tail);
            if (tail == NULL || tail == Py_None) {
                tail = PyLong_FromSsize_t(PyList_GET_SIZE(self));
                if (tail == NULL)
                    return NULL;
                set_slot(self, list_tail, tail);
                Py_DECREF(tail);
            }
        }
    }
    if (PyList_Append(self, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A replace of slot `i` right after an op that wrote slot `i` collapses into it
   (see `changelog.list_record`). Returns 1 when collapsed, 0 if not, -1 on error. */
static int
list_collapse(PyObject *log, Py_ssize_t i, PyObject *value)
{
    Py_ssize_t n = PyList_GET_SIZE(log);
    if (n == 0)
        return 0;
    PyObject *last = PyList_GET_ITEM(log, n - 1);
    if (!PyTuple_Check(last) || PyTuple_GET_SIZE(last) < 2)
        return 0;
    PyObject *kind = PyTuple_GET_ITEM(last, 0);
    int removed = PyUnicode_Compare(kind, s_remove);
    if (removed == -1 && PyErr_Occurred())
        return -1;
    if (removed == 0)
        return 0;
    PyObject *at = PyTuple_GET_ITEM(last, 1);
    if (!PyLong_CheckExact(at))
        return 0;
    Py_ssize_t j = PyLong_AsSsize_t(at);
    if (j == -1 && PyErr_Occurred())
        return -1;
    if (j != i)
        return 0;
    PyObject *op = PyTuple_Pack(3, kind, at, value);
    if (op == NULL)
        return -1;
    PyObject_GC_UnTrack(op); /* holds atomic values only */
    return PyList_SetItem(log, n - 1, op) < 0 ? -1 : 1; /* steals op */
}

static int
list_ass_subscript(PyObject *self, PyObject *index, PyObject *value)
{
    if (threaded || value == NULL || (PyObject *)Py_TYPE(self) != TrackedList ||
        !PyLong_CheckExact(index))
        return python_ass(self, index, value);
    PyObject *tail = SLOT(self, list_tail);
    if (tail != NULL && tail != Py_None) /* a pending run of appends: flush first */
        return python_ass(self, index, value);
    Py_ssize_t n = PyList_GET_SIZE(self);
    Py_ssize_t i = PyLong_AsSsize_t(index);
    if (i == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return python_ass(self, index, value);
    }
    if (i < 0)
        i += n;
    if (i < 0 || i >= n)
        return python_ass(self, index, value);
    PyObject *old = PyList_GET_ITEM(self, i);
    if (old == value)
        return 0;
    if (!is_atomic(old) || !is_atomic(value))
        return python_ass(self, index, value);
    Py_INCREF(value);
    PyList_SET_ITEM(self, i, value);
    Py_DECREF(old);
    if (!has_parents(SLOT(self, list_parents)))
        return 0;
    PyObject *log = SLOT(self, list_log);
    if (log != NULL && PyList_CheckExact(log)) {
        int collapsed = list_collapse(log, i, value);
        if (collapsed < 0)
            return -1;
        if (collapsed)
            return 0;
    }
    PyObject *at = PyLong_FromSsize_t(i);
    if (at == NULL)
        return -1;
    PyObject *op = PyTuple_Pack(3, s_replace, at, value);
    Py_DECREF(at);
    if (op == NULL)
        return -1;
    PyObject_GC_UnTrack(op); /* holds atomic values only */
    int status = list_log_op(self, op);
    Py_DECREF(op);
    if (status < 0)
        return -1;
    log = SLOT(self, list_log);
    if (log != NULL && PyList_CheckExact(log) &&
        PyList_GET_SIZE(log) > 2 * PyList_GET_SIZE(self) + 32)
        set_slot(self, list_log, RESET); /* an overlong log: resend whole */
    return 0;
}

static int
list_ass_item(PyObject *self, Py_ssize_t i, PyObject *value)
{
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL)
        return -1;
    int status = list_ass_subscript(self, index, value);
    Py_DECREF(index);
    return status;
}

static PyMethodDef list_methods[] = {
    {"append", (PyCFunction)list_append, METH_O, "Append and log the add."},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods list_as_mapping = {
    .mp_ass_subscript = list_ass_subscript,
};

static PySequenceMethods list_as_sequence = {
    .sq_ass_item = list_ass_item,
};

static PyTypeObject ListBase = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_sync._speedups.ListBase",
    .tp_doc = "C hot paths of TrackedList.",
    .tp_basicsize = sizeof(PyListObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_methods = list_methods,
    .tp_as_mapping = &list_as_mapping,
    .tp_as_sequence = &list_as_sequence,
};

/* ------------------------------------------------------------------------ */
/* DictBase: the C half of TrackedDict                                       */

static int
dict_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    if (threaded || value == NULL || (PyObject *)Py_TYPE(self) != TrackedDict ||
        !is_atomic(value))
        return python_ass(self, key, value);
    PyObject *old = PyDict_GetItemWithError(self, key);
    if (old == NULL && PyErr_Occurred())
        return -1;
    if (old == value)
        return 0;
    if (old != NULL && !is_atomic(old))
        return python_ass(self, key, value);
    int existed = old != NULL;
    if (PyDict_SetItem(self, key, value) < 0)
        return -1;
    if (!has_parents(SLOT(self, dict_parents)))
        return 0;
    PyObject *log = SLOT(self, dict_log);
    if (log == RESET)
        return 0;
    if (log != NULL && PyDict_CheckExact(log)) {
        int logged = PyDict_Contains(log, key);
        if (logged != 0)
            return logged < 0 ? -1 : 0;
        /* a log grown past 2 * len + 32 turns into RESET: `_ws_record` decides */
        if (PyDict_GET_SIZE(log) + 1 > 2 * PyDict_GET_SIZE(self) + 32)
            return call_method_status(self, s_ws_record, key, existed ? Py_True : Py_False);
    }
    return record_key(self, key, existed ? Py_True : Py_False);
}

static PyMappingMethods dict_as_mapping = {
    .mp_ass_subscript = dict_ass_subscript,
};

static PyTypeObject DictBase = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_sync._speedups.DictBase",
    .tp_doc = "C hot paths of TrackedDict.",
    .tp_basicsize = sizeof(PyDictObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_as_mapping = &dict_as_mapping,
};

/* ------------------------------------------------------------------------ */
/* AttributeBase: the C half of descriptors.SyncedAttribute                  */

typedef struct {
    PyObject_HEAD
    PyObject *name;
} Attribute;

static int
attribute_init(Attribute *self, PyObject *args, PyObject *kwargs)
{
    PyObject *name;
    if (!PyArg_ParseTuple(args, "U:SyncedAttribute", &name))
        return -1;
    Py_INCREF(name);
    Py_XSETREF(self->name, name);
    return 0;
}

static void
attribute_dealloc(Attribute *self)
{
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* After `obj.name` went from `old` to `value` (both stored), decide whether
   the node needs to hear of it: not for a leaf replacing a leaf under a key
   already logged this round, not for a copy's stale node. */
static int
attribute_record(PyObject *name, PyObject *obj, PyObject *node, PyObject *old, PyObject *value)
{
    if ((PyObject *)Py_TYPE(node) != ObjNode) {
        PyObject *r = PyObject_CallMethodObjArgs(node, s_assign, obj, name, old, value, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    PyObject *owner_id = SLOT(node, node_owner_id);
    if (owner_id == NULL || !PyLong_Check(owner_id))
        return 0;
    void *owner = PyLong_AsVoidPtr(owner_id);
    if (owner == NULL && PyErr_Occurred())
        return -1;
    if (owner != (void *)obj)
        return 0;
    PyObject *log = SLOT(node, node_log);
    if (log != NULL && PyDict_CheckExact(log) && is_atomic(value) && old != MISSING &&
        is_atomic(old)) {
        int logged = PyDict_Contains(log, name);
        if (logged != 0)
            return logged < 0 ? -1 : 0;
    }
    PyObject *fields = SLOT(node, node_fields);
    if (fields == NULL)
        return 0;
    int synced = PySequence_Contains(fields, name);
    if (synced <= 0)
        return synced;
    PyObject *r = PyObject_CallMethodObjArgs(node, s_assign, obj, name, old, value, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int
attribute_set(PyObject *descr, PyObject *obj, PyObject *value)
{
    Attribute *self = (Attribute *)descr;
    if (threaded)
        return value == NULL ? locked_status(descr, s_ws_delete, obj, NULL)
                             : locked_status(descr, s_ws_set, obj, value);
    if (value == NULL)
        return call_method_status(descr, s_ws_delete, obj, NULL);
    PyObject *d = PyObject_GenericGetDict(obj, NULL);
    if (d == NULL)
        return -1;
    int status = -1;
    PyObject *old = NULL;
    PyObject *node = PyDict_GetItemWithError(d, NODE_KEY);
    if (node == NULL && PyErr_Occurred())
        goto done;
    Py_XINCREF(node);
    old = PyDict_GetItemWithError(d, self->name);
    if (old == NULL && PyErr_Occurred())
        goto done;
    old = old == NULL ? Py_NewRef(MISSING) : Py_NewRef(old);
    if (PyDict_SetItem(d, self->name, value) < 0)
        goto done;
    status = 0;
    if (node != NULL && old != value)
        status = attribute_record(self->name, obj, node, old, value);
done:
    Py_XDECREF(old);
    Py_XDECREF(node);
    Py_DECREF(d);
    return status;
}

static PyMemberDef attribute_members[] = {
    {"name", T_OBJECT_EX, offsetof(Attribute, name), 0, "The attribute's name."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject AttributeBase = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_sync._speedups.AttributeBase",
    .tp_doc = "C half of SyncedAttribute: the write path of a synced attribute.",
    .tp_basicsize = sizeof(Attribute),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)attribute_init,
    .tp_dealloc = (destructor)attribute_dealloc,
    .tp_members = attribute_members,
    .tp_descr_set = attribute_set,
};

/* ------------------------------------------------------------------------ */
/* SetattrHook: the C half of the `__setattr__` that tracking.hook_class puts  */
/* on model classes                                                           */

typedef struct {
    PyObject_HEAD
    PyObject *original; /* the class's own __setattr__ */
    PyObject *python;   /* the same hook in Python (threaded, or anything unusual) */
    vectorcallfunc vectorcall;
} Hook;

static PyObject *
node_of_owner(PyObject *d, PyObject *obj)
{
    /* The ObjNode in `d` made for `obj` itself (borrowed), or NULL. */
    PyObject *node = PyDict_GetItemWithError(d, NODE_KEY);
    if (node == NULL || (PyObject *)Py_TYPE(node) != ObjNode)
        return NULL;
    PyObject *owner_id = SLOT(node, node_owner_id);
    if (owner_id == NULL || !PyLong_Check(owner_id))
        return NULL;
    void *owner = PyLong_AsVoidPtr(owner_id);
    return owner == (void *)obj ? node : NULL; /* NULL with an error set on overflow */
}

static PyObject *
hook_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Hook *self = (Hook *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (threaded || nargs != 3 || kwnames != NULL)
        return PyObject_Vectorcall(self->python, args, nargsf, kwnames);
    PyObject *obj = args[0], *name = args[1];
    PyObject *d = PyObject_GenericGetDict(obj, NULL);
    if (d == NULL) {
        PyErr_Clear();
        return PyObject_Vectorcall(self->original, args, 3, NULL);
    }
    PyObject *node = node_of_owner(d, obj);
    if (node == NULL && PyErr_Occurred()) {
        Py_DECREF(d);
        return NULL;
    }
    PyObject *fields = node ? SLOT(node, node_fields) : NULL;
    int synced = fields ? PySequence_Contains(fields, name) : 0;
    if (synced <= 0) {
        Py_DECREF(d);
        if (synced < 0)
            return NULL;
        return PyObject_Vectorcall(self->original, args, 3, NULL);
    }
    Py_INCREF(node);
    PyObject *old = PyDict_GetItemWithError(d, name);
    Py_DECREF(d);
    old = Py_NewRef(old ? old : MISSING);
    PyObject *new = NULL, *r = PyObject_Vectorcall(self->original, args, 3, NULL);
    if (r == NULL)
        goto done;
    Py_DECREF(r);
    r = NULL;
    d = PyObject_GenericGetDict(obj, NULL); /* validation may have put in a new dict */
    if (d == NULL)
        goto done;
    new = PyDict_GetItemWithError(d, name);
    Py_DECREF(d);
    new = Py_NewRef(new ? new : MISSING);
    if (new == old) {
        r = Py_NewRef(Py_None);
        goto done;
    }
    if (old != MISSING && new != MISSING && is_atomic(old) && is_atomic(new)) {
        /* ObjNode.assign for two leaves: only the key is recorded */
        PyObject *parents = SLOT(node, node_parents);
        if (has_parents(parents) && record_key(node, name, Py_True) < 0)
            goto done;
        r = Py_NewRef(Py_None);
        goto done;
    }
    r = PyObject_CallMethodObjArgs(node, s_assign, obj, name, old, new, NULL);
done:
    Py_XDECREF(new);
    Py_DECREF(old);
    Py_DECREF(node);
    return r;
}

static PyObject *
hook_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *original, *python;
    if (!PyArg_ParseTuple(args, "OO:SetattrHook", &original, &python))
        return NULL;
    Hook *self = (Hook *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->original = Py_NewRef(original);
    self->python = Py_NewRef(python);
    self->vectorcall = hook_call;
    return (PyObject *)self;
}

static int
hook_traverse(Hook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->python);
    return 0;
}

static int
hook_clear(Hook *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->python);
    return 0;
}

static void
hook_dealloc(Hook *self)
{
    PyObject_GC_UnTrack(self);
    hook_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
hook_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyMemberDef hook_members[] = {
    {"original", T_OBJECT_EX, offsetof(Hook, original), READONLY, "The wrapped __setattr__."},
    {"__wrapped__", T_OBJECT_EX, offsetof(Hook, python), READONLY, "The hook in Python."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SetattrHook = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_sync._speedups.SetattrHook",
    .tp_doc = "SetattrHook(original, python): a model class's __setattr__ that records "
              "writes of synced fields; `python` is the same hook written in Python.",
    .tp_basicsize = sizeof(Hook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = hook_new,
    .tp_dealloc = (destructor)hook_dealloc,
    .tp_traverse = (traverseproc)hook_traverse,
    .tp_clear = (inquiry)hook_clear,
    .tp_vectorcall_offset = offsetof(Hook, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = hook_get,
    .tp_members = hook_members,
};

/* ------------------------------------------------------------------------ */
/* StoreOnly: the cheapest possible data descriptor, for the benchmarks       */

static int
store_only_set(PyObject *descr, PyObject *obj, PyObject *value)
{
    PyObject *d = PyObject_GenericGetDict(obj, NULL);
    if (d == NULL)
        return -1;
    PyObject *name = ((Attribute *)descr)->name;
    int status = value ? PyDict_SetItem(d, name, value) : PyDict_DelItem(d, name);
    Py_DECREF(d);
    return status;
}

static PyTypeObject StoreOnly = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ws_sync._speedups.StoreOnly",
    .tp_doc = "A data descriptor that only stores into the instance dict: the floor "
              "for any tracked attribute write (benchmarks compare against it).",
    .tp_basicsize = sizeof(Attribute),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)attribute_init,
    .tp_dealloc = (destructor)attribute_dealloc,
    .tp_members = attribute_members,
    .tp_descr_set = store_only_set,
};

/* ------------------------------------------------------------------------ */
/* configure()                                                               */

static int
slot_offset(PyObject *cls, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyObject_GetAttrString(cls, name);
    if (descr == NULL)
        return -1;
    if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not a __slots__ member", cls, name);
        Py_DECREF(descr);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not an object slot", cls, name);
        Py_DECREF(descr);
        return -1;
    }
    *offset = member->offset;
    Py_DECREF(descr);
    return 0;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *tl, *td, *on, *link, *reset, *missing, *node_key, *locker;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOUO:configure", &PyType_Type, &tl, &PyType_Type, &td,
                          &PyType_Type, &on, &PyType_Type, &link, &reset, &missing, &node_key,
                          &locker))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)tl, &ListBase) ||
        !PyType_IsSubtype((PyTypeObject *)td, &DictBase)) {
        PyErr_SetString(PyExc_TypeError, "configure() needs subclasses of ListBase and DictBase");
        return NULL;
    }
    if (slot_offset(tl, "_ws_parents", &list_parents) < 0 ||
        slot_offset(tl, "_ws_log", &list_log) < 0 ||
        slot_offset(tl, "_ws_tail", &list_tail) < 0 ||
        slot_offset(tl, "_ws_dirty", &list_dirty) < 0 ||
        slot_offset(td, "_ws_dirty", &dict_dirty) < 0 ||
        slot_offset(on, "_ws_parents", &node_parents) < 0 ||
        slot_offset(on, "_ws_dirty", &node_dirty) < 0 || slot_offset(link, "ref", &link_ref) < 0 ||
        slot_offset(tl, "_ws_full", &list_full) < 0 || slot_offset(td, "_ws_full", &dict_full) < 0 ||
        slot_offset(on, "_ws_full", &node_full) < 0 ||
        slot_offset(td, "_ws_parents", &dict_parents) < 0 ||
        slot_offset(td, "_ws_log", &dict_log) < 0 || slot_offset(on, "_ws_log", &node_log) < 0 ||
        slot_offset(on, "fields", &node_fields) < 0 ||
        slot_offset(on, "owner_id", &node_owner_id) < 0)
        return NULL;
    Py_XSETREF(TrackedList, Py_NewRef(tl));
    Py_XSETREF(TrackedDict, Py_NewRef(td));
    Py_XSETREF(ObjNode, Py_NewRef(on));
    Py_XSETREF(Link, Py_NewRef(link));
    Py_XSETREF(RESET, Py_NewRef(reset));
    Py_XSETREF(MISSING, Py_NewRef(missing));
    Py_XSETREF(call_locked, Py_NewRef(locker));
    Py_INCREF(node_key);
    PyUnicode_InternInPlace(&node_key);
    Py_XSETREF(NODE_KEY, node_key);
    Py_RETURN_NONE;
}

static PyObject *
set_threaded(PyObject *module, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0)
        return NULL;
    if (on && call_locked == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    threaded = on;
    Py_RETURN_NONE;
}

static PyObject *
get_threaded(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(threaded);
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(TrackedList, TrackedDict, ObjNode, RESET, MISSING, NODE, call_locked): "
     "bind the fast paths to the Python classes, markers and lock they serve."},
    {"set_threaded", set_threaded, METH_O,
     "While true, every write takes the Python path through call_locked."},
    {"threaded", get_threaded, METH_NOARGS, "The flag set_threaded() set."},
    {"touch", touch, METH_O, "tracking.touch in C."},
    {"consume", (PyCFunction)(void (*)(void))consume, METH_FASTCALL, "patch.consume in C."},
    {"configure_patch", configure_patch, METH_VARARGS,
     "configure_patch(archive, roots_of): the Python helpers consume() calls."},
    {"key_record", (PyCFunction)(void (*)(void))key_record, METH_FASTCALL,
     "tracking.key_record in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ws_sync._speedups",
    .m_doc = "C hot paths of ws_sync.tracking (optional: the pure-Python code is the reference).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern(PyObject **target, const char *text)
{
    *target = PyUnicode_InternFromString(text);
    return *target == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    ListBase.tp_base = &PyList_Type;
    DictBase.tp_base = &PyDict_Type;
    if (PyType_Ready(&ListBase) < 0 || PyType_Ready(&DictBase) < 0 ||
        PyType_Ready(&AttributeBase) < 0 || PyType_Ready(&StoreOnly) < 0 ||
        PyType_Ready(&SetattrHook) < 0)
        return NULL;
    if (intern(&s_add, "add") < 0 || intern(&s_replace, "replace") < 0 ||
        intern(&s_remove, "remove") < 0 || intern(&s_ws_append, "_ws_append") < 0 ||
        intern(&s_ws_setitem, "_ws_setitem") < 0 || intern(&s_ws_delitem, "_ws_delitem") < 0 ||
        intern(&s_ws_record, "_ws_record") < 0 || intern(&s_ws_delete, "_ws_delete") < 0 ||
        intern(&s_assign, "assign") < 0 || intern(&s_ws_set, "_ws_set") < 0 ||
        intern(&s_ws_parents, "_ws_parents") < 0 || intern(&s_ws_dirty, "_ws_dirty") < 0 ||
        intern(&s_ws_log, "_ws_log") < 0 || intern(&s_ws_full, "_ws_full") < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "ListBase", (PyObject *)&ListBase) < 0 ||
        PyModule_AddObjectRef(m, "DictBase", (PyObject *)&DictBase) < 0 ||
        PyModule_AddObjectRef(m, "AttributeBase", (PyObject *)&AttributeBase) < 0 ||
        PyModule_AddObjectRef(m, "StoreOnly", (PyObject *)&StoreOnly) < 0 ||
        PyModule_AddObjectRef(m, "SetattrHook", (PyObject *)&SetattrHook) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
