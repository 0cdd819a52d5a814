/* Optional C fast paths for ledger/encoding.py (pure data, no I/O).
 *
 * unpack(data, max_bytes): parse one msgpack value of the wire subset (nil, bool, int, bin, str,
 *   array) and accept it only if ``data`` is exactly its canonical encoding (what msgpack's
 *   Packer(use_bin_type=True) writes: the shortest header for every int, length and count).
 *   Any doubt raises ValueError: the caller then runs the reference path, which accepts or
 *   names the problem. So this can only be stricter than the reference, never looser.
 *
 * decoder(cls, tag, version, plan, fallback, new): a callable that builds a record from its
 *   wire list per ``plan`` (one tuple per field, made by encoding._c_plan) with the checks of
 *   the compiled Python decoder; on any doubt it returns ``fallback(obj)``, the Python decoder
 *   itself, so results and error messages are exactly the Python ones.
 *
 * seal_rows(rows) / unseal(key, stored): the row checksums of ledger/rowcheck.py in one C call
 *   per table (write) or per row (read): CRC-32 (the IEEE polynomial of zlib.crc32, computed
 *   here by slicing-by-16, so no link to zlib) over key || value, 4 bytes big-endian appended.
 *   ledger/rowcheck.py holds the Python reference; tests check that both give the same bytes.
 *
 * Every read is bounds-checked against the end of the input; nesting is capped at MAX_DEPTH.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 32
#define MAX_ARRAY_LEN 1000000

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    Py_ssize_t max_len;
} Reader;

static PyObject *reject(void) {
    PyErr_SetString(PyExc_ValueError, "not canonical wire msgpack");
    return NULL;
}

static int need(Reader *r, Py_ssize_t n) { return n >= 0 && (r->end - r->p) >= n; }

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static PyObject *parse(Reader *r, int depth);

static PyObject *parse_array(Reader *r, Py_ssize_t n, int depth) {
    if (depth >= MAX_DEPTH || n > MAX_ARRAY_LEN || n > (r->end - r->p)) return reject();
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = parse(r, depth + 1);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *parse_raw(Reader *r, Py_ssize_t n, int is_str) {
    if (n > r->max_len || !need(r, n)) return reject();
    const char *s = (const char *)r->p;
    r->p += n;
    if (!is_str) return PyBytes_FromStringAndSize(s, n);
    PyObject *u = PyUnicode_DecodeUTF8(s, n, NULL);
    if (u == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return reject();
    return u;
}

static PyObject *parse(Reader *r, int depth) {
    if (!need(r, 1)) return reject();
    unsigned char b = *r->p++;
    if (b <= 0x7f) return PyLong_FromLong(b);
    if (b >= 0xe0) return PyLong_FromLong((long)(signed char)b);
    if ((b & 0xf0) == 0x90) return parse_array(r, b & 0x0f, depth);
    if ((b & 0xe0) == 0xa0) return parse_raw(r, b & 0x1f, 1);
    int width;
    switch (b) {
    case 0xc0: Py_RETURN_NONE;
    case 0xc2: Py_RETURN_FALSE;
    case 0xc3: Py_RETURN_TRUE;
    case 0xc4: case 0xc5: case 0xc6: {  /* bin 8/16/32: the shortest header for the length */
        width = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
        if (!need(r, width)) return reject();
        uint64_t n = be(r->p, width);
        r->p += width;
        if ((b == 0xc5 && n < 0x100) || (b == 0xc6 && n < 0x10000)) return reject();
        if (n > (uint64_t)PY_SSIZE_T_MAX) return reject();
        return parse_raw(r, (Py_ssize_t)n, 0);
    }
    case 0xd9: case 0xda: case 0xdb: {  /* str 8/16/32 */
        width = b == 0xd9 ? 1 : b == 0xda ? 2 : 4;
        if (!need(r, width)) return reject();
        uint64_t n = be(r->p, width);
        r->p += width;
        if ((b == 0xd9 && n < 32) || (b == 0xda && n < 0x100) || (b == 0xdb && n < 0x10000))
            return reject();
        if (n > (uint64_t)PY_SSIZE_T_MAX) return reject();
        return parse_raw(r, (Py_ssize_t)n, 1);
    }
    case 0xdc: case 0xdd: {  /* array 16/32 */
        width = b == 0xdc ? 2 : 4;
        if (!need(r, width)) return reject();
        uint64_t n = be(r->p, width);
        r->p += width;
        if ((b == 0xdc && n < 16) || (b == 0xdd && n < 0x10000)) return reject();
        if (n > MAX_ARRAY_LEN) return reject();
        return parse_array(r, (Py_ssize_t)n, depth);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {  /* uint: only for values past the next size */
        width = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : 8;
        if (!need(r, width)) return reject();
        uint64_t v = be(r->p, width);
        r->p += width;
        uint64_t lo = b == 0xcc ? 0x80 : b == 0xcd ? 0x100 : b == 0xce ? 0x10000 : 0x100000000ULL;
        if (v < lo) return reject();
        return PyLong_FromUnsignedLongLong((unsigned long long)v);
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {  /* int: only for negatives past the next */
        width = b == 0xd0 ? 1 : b == 0xd1 ? 2 : b == 0xd2 ? 4 : 8;
        if (!need(r, width)) return reject();
        uint64_t u = be(r->p, width);
        r->p += width;
        int64_t v;
        if (width == 1) v = (int8_t)u;
        else if (width == 2) v = (int16_t)u;
        else if (width == 4) v = (int32_t)u;
        else v = (int64_t)u;
        int64_t hi = b == 0xd0 ? -33 : b == 0xd1 ? -129 : b == 0xd2 ? -32769 : -2147483649LL;
        if (v > hi) return reject();
        return PyLong_FromLongLong((long long)v);
    }
    default:  /* floats, maps, ext, 0xc1: not wire values */
        return reject();
    }
}

static PyObject *py_unpack(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t max_len;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &max_len)) return NULL;
    Reader r = {(const unsigned char *)buf.buf, (const unsigned char *)buf.buf + buf.len, max_len};
    PyObject *out = NULL;
    if (buf.len == 0 || buf.len > max_len) {
        reject();
    } else {
        out = parse(&r, 0);
        if (out != NULL && r.p != r.end) {
            Py_DECREF(out);
            out = reject();
        }
    }
    PyBuffer_Release(&buf);
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* Record decoders                                                                            */

enum {
    K_CALL = 0,        /* extra = spec: spec.from_wire(value, name) */
    K_INT = 1,         /* a, b: int64 bounds */
    K_UINT = 2,        /* a, b: uint64 bounds */
    K_BYTES = 3,       /* a, b: length bounds */
    K_STR_KNOWN = 4,   /* extra = set of strings the spec accepted already */
    K_STR_LEN = 5,     /* a, b: length bounds (code points) */
    K_BOOL = 6,
    K_NESTED = 7,      /* extra = decoder state of the nested record */
    K_LIST_NESTED = 8, /* a, b: count bounds; extra = decoder state */
    K_LIST_BYTES = 9,  /* a, b: count bounds; extra = (lo, hi) byte length bounds */
    K_OPTIONAL = 10,   /* extra = the inner field tuple */
    K_STR_ASCII = 11,  /* a, b: length bounds; extra = 128 bytes, nonzero for allowed chars */
};

/* A decoder's state: (cls, tag, version, plan, fallback, new).
 * plan: tuple of fields (name, kind, a, b, extra). */

#define DOUBT ((PyObject *)1) /* not an object: "let the Python decoder decide" */

static PyObject *build(PyObject *state, PyObject *obj);

static PyObject *field(PyObject *f, PyObject *v) {
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(f, 1));
    PyObject *pa = PyTuple_GET_ITEM(f, 2), *pb = PyTuple_GET_ITEM(f, 3);
    PyObject *extra = PyTuple_GET_ITEM(f, 4);
    switch (kind) {
    case K_INT: {
        if (!PyLong_CheckExact(v)) return DOUBT;
        int ovf = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
        if (ovf || (x == -1 && PyErr_Occurred())) { PyErr_Clear(); return DOUBT; }
        if (x < PyLong_AsLongLong(pa) || x > PyLong_AsLongLong(pb)) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_UINT: {
        if (!PyLong_CheckExact(v)) return DOUBT;
        unsigned long long x = PyLong_AsUnsignedLongLong(v);
        if (x == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return DOUBT; }
        if (x < PyLong_AsUnsignedLongLong(pa) || x > PyLong_AsUnsignedLongLong(pb)) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_BYTES: {
        if (!PyBytes_CheckExact(v)) return DOUBT;
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        if (n < PyLong_AsSsize_t(pa) || n > PyLong_AsSsize_t(pb)) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_STR_KNOWN: {
        if (!PyUnicode_CheckExact(v)) return DOUBT;
        int known = PySet_Contains(extra, v);
        if (known < 0) { PyErr_Clear(); return DOUBT; }
        if (!known) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_STR_ASCII: {
        if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v)) return DOUBT;
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        if (n < PyLong_AsSsize_t(pa) || n > PyLong_AsSsize_t(pb)) return DOUBT;
        const unsigned char *allowed = (const unsigned char *)PyBytes_AS_STRING(extra);
        const Py_UCS1 *c = PyUnicode_1BYTE_DATA(v);
        for (Py_ssize_t i = 0; i < n; i++)
            if (!allowed[c[i]]) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_STR_LEN: {
        if (!PyUnicode_CheckExact(v)) return DOUBT;
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        if (n < PyLong_AsSsize_t(pa) || n > PyLong_AsSsize_t(pb)) return DOUBT;
        Py_INCREF(v);
        return v;
    }
    case K_BOOL:
        if (v != Py_True && v != Py_False) return DOUBT;
        Py_INCREF(v);
        return v;
    case K_NESTED:
        return build(extra, v);
    case K_LIST_NESTED:
    case K_LIST_BYTES: {
        if (!PyList_CheckExact(v)) return DOUBT;
        Py_ssize_t n = PyList_GET_SIZE(v);
        if (n < PyLong_AsSsize_t(pa) || n > PyLong_AsSsize_t(pb)) return DOUBT;
        Py_ssize_t lo = 0, hi = 0;
        if (kind == K_LIST_BYTES) {
            lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(extra, 0));
            hi = PyLong_AsSsize_t(PyTuple_GET_ITEM(extra, 1));
        }
        PyObject *out = PyTuple_New(n);
        if (out == NULL) return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(v, i), *y;
            if (kind == K_LIST_NESTED) {
                y = build(extra, x);
            } else if (PyBytes_CheckExact(x) && PyBytes_GET_SIZE(x) >= lo
                       && PyBytes_GET_SIZE(x) <= hi) {
                Py_INCREF(x);
                y = x;
            } else {
                y = DOUBT;
            }
            if (y == NULL || y == DOUBT) {
                Py_DECREF(out);
                return y;
            }
            PyTuple_SET_ITEM(out, i, y);
        }
        return out;
    }
    case K_OPTIONAL:
        if (v == Py_None) Py_RETURN_NONE;
        return field(extra, v);
    default:  /* K_CALL: the spec converts or raises its own EncodingError */
        return PyObject_CallMethod(extra, "from_wire", "OO", v, PyTuple_GET_ITEM(f, 0));
    }
}

static PyObject *build(PyObject *state, PyObject *obj) {
    PyObject *cls = PyTuple_GET_ITEM(state, 0);
    PyObject *plan = PyTuple_GET_ITEM(state, 3);
    PyObject *new_fn = PyTuple_GET_ITEM(state, 5);
    Py_ssize_t nf = PyTuple_GET_SIZE(plan);
    if (!PyList_CheckExact(obj) || PyList_GET_SIZE(obj) != nf + 2) return DOUBT;
    PyObject *t = PyList_GET_ITEM(obj, 0), *ver = PyList_GET_ITEM(obj, 1);
    if (!PyLong_CheckExact(t) || !PyLong_CheckExact(ver)) return DOUBT;
    if (PyObject_RichCompareBool(t, PyTuple_GET_ITEM(state, 1), Py_EQ) != 1
        || PyObject_RichCompareBool(ver, PyTuple_GET_ITEM(state, 2), Py_EQ) != 1) {
        PyErr_Clear();
        return DOUBT;
    }
    PyObject *o = PyObject_CallOneArg(new_fn, cls);
    if (o == NULL) return NULL;
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (d == NULL) {
        Py_DECREF(o);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nf; i++) {
        PyObject *f = PyTuple_GET_ITEM(plan, i);
        PyObject *v = field(f, PyList_GET_ITEM(obj, i + 2));
        if (v == NULL || v == DOUBT) {
            Py_DECREF(d);
            Py_DECREF(o);
            return v;
        }
        int rc = PyDict_SetItem(d, PyTuple_GET_ITEM(f, 0), v);
        Py_DECREF(v);
        if (rc < 0) {
            Py_DECREF(d);
            Py_DECREF(o);
            return NULL;
        }
    }
    Py_DECREF(d);
    return o;
}

static PyObject *decode_call(PyObject *state, PyObject *obj) {
    PyObject *out = build(state, obj);
    if (out == DOUBT) return PyObject_CallOneArg(PyTuple_GET_ITEM(state, 4), obj);
    return out;
}

static PyMethodDef decode_def = {"from_wire", (PyCFunction)decode_call, METH_O,
                                 "Build the record from its wire list (C fast path)."};

static int is_int(PyObject *o) { return PyLong_CheckExact(o); }

/* A plan comes from encoding._c_plan, never from input; still, check its shape once here so
 * that the builder can read it without checks. */
static int check_field(PyObject *f, int depth) {
    if (depth > 8 || !PyTuple_CheckExact(f) || PyTuple_GET_SIZE(f) != 5
        || !PyUnicode_Check(PyTuple_GET_ITEM(f, 0)) || !is_int(PyTuple_GET_ITEM(f, 1)))
        return 0;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(f, 1));
    PyObject *a = PyTuple_GET_ITEM(f, 2), *b = PyTuple_GET_ITEM(f, 3);
    PyObject *extra = PyTuple_GET_ITEM(f, 4);
    switch (kind) {
    case K_INT: case K_UINT: case K_BYTES: case K_STR_LEN: case K_LIST_NESTED:
    case K_LIST_BYTES:
        if (!is_int(a) || !is_int(b)) return 0;
        break;
    default:
        break;
    }
    switch (kind) {
    case K_CALL: return PyObject_HasAttrString(extra, "from_wire");
    case K_INT: case K_UINT: case K_BYTES: case K_STR_LEN: case K_BOOL: return 1;
    case K_STR_KNOWN: return PySet_Check(extra);
    case K_STR_ASCII: return PyBytes_CheckExact(extra) && PyBytes_GET_SIZE(extra) == 128;
    case K_NESTED: case K_LIST_NESTED:
        return PyTuple_CheckExact(extra) && PyTuple_GET_SIZE(extra) == 6;
    case K_LIST_BYTES:
        return PyTuple_CheckExact(extra) && PyTuple_GET_SIZE(extra) == 2
               && is_int(PyTuple_GET_ITEM(extra, 0)) && is_int(PyTuple_GET_ITEM(extra, 1));
    case K_OPTIONAL: return check_field(extra, depth + 1);
    default: return 0;
    }
}

static PyObject *py_decoder(PyObject *self, PyObject *args) {
    PyObject *cls, *tag, *version, *plan, *fallback, *new_fn;
    if (!PyArg_ParseTuple(args, "OO!O!O!OO", &cls, &PyLong_Type, &tag, &PyLong_Type, &version,
                          &PyTuple_Type, &plan, &fallback, &new_fn))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(plan); i++) {
        if (!check_field(PyTuple_GET_ITEM(plan, i), 0)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "each plan field is (name, kind, a, b, extra)");
            return NULL;
        }
    }
    PyObject *state = PyTuple_Pack(6, cls, tag, version, plan, fallback, new_fn);
    if (state == NULL) return NULL;
    PyObject *fn = PyCFunction_New(&decode_def, state);
    Py_DECREF(state);
    return fn;
}

static PyObject *py_state(PyObject *self, PyObject *fn) {
    /* The state tuple of a decoder made here (to nest it in another plan). */
    if (!PyCFunction_Check(fn) || PyCFunction_GET_FUNCTION(fn) != (PyCFunction)decode_call) {
        PyErr_SetString(PyExc_TypeError, "not a decoder made by ledger._speedups");
        return NULL;
    }
    PyObject *st = PyCFunction_GET_SELF(fn);
    Py_INCREF(st);
    return st;
}

/* ---- row checksums (CRC-32, reflected polynomial 0xEDB88320, as zlib.crc32) ---- */
static uint32_t crc_table[16][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 16; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* zlib.crc32(data, crc) */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, Py_ssize_t n) {
    crc = ~crc;
    while (n >= 16) {
        uint32_t a = crc ^ le32(p), b = le32(p + 4), c = le32(p + 8), d = le32(p + 12);
        crc = crc_table[15][a & 0xff] ^ crc_table[14][(a >> 8) & 0xff]
              ^ crc_table[13][(a >> 16) & 0xff] ^ crc_table[12][a >> 24]
              ^ crc_table[11][b & 0xff] ^ crc_table[10][(b >> 8) & 0xff]
              ^ crc_table[9][(b >> 16) & 0xff] ^ crc_table[8][b >> 24]
              ^ crc_table[7][c & 0xff] ^ crc_table[6][(c >> 8) & 0xff]
              ^ crc_table[5][(c >> 16) & 0xff] ^ crc_table[4][c >> 24]
              ^ crc_table[3][d & 0xff] ^ crc_table[2][(d >> 8) & 0xff]
              ^ crc_table[1][(d >> 16) & 0xff] ^ crc_table[0][d >> 24];
        p += 16;
        n -= 16;
    }
    while (n-- > 0) crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t row_crc(PyObject *key, const char *v, Py_ssize_t vlen) {
    uint32_t c = crc_update(0, (const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
    return crc_update(c, (const unsigned char *)v, vlen);
}

static PyObject *py_seal_rows(PyObject *self, PyObject *rows) {
    /* [(key, value), ...] -> [(key, value || crc32(key || value) big-endian), ...] */
    if (!PyList_CheckExact(rows)) {
        PyErr_SetString(PyExc_TypeError, "rows must be a list of (bytes, bytes)");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        PyObject *k, *v;
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 2
            || !PyBytes_CheckExact(k = PyTuple_GET_ITEM(row, 0))
            || !PyBytes_CheckExact(v = PyTuple_GET_ITEM(row, 1))) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "rows must be a list of (bytes, bytes)");
            return NULL;
        }
        Py_ssize_t vlen = PyBytes_GET_SIZE(v);
        PyObject *sealed = PyBytes_FromStringAndSize(NULL, vlen + 4);
        if (sealed == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(sealed);
        memcpy(dst, PyBytes_AS_STRING(v), (size_t)vlen);
        uint32_t c = row_crc(k, PyBytes_AS_STRING(v), vlen);
        dst[vlen] = (unsigned char)(c >> 24);
        dst[vlen + 1] = (unsigned char)(c >> 16);
        dst[vlen + 2] = (unsigned char)(c >> 8);
        dst[vlen + 3] = (unsigned char)c;
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(sealed);
            Py_DECREF(out);
            return NULL;
        }
        Py_INCREF(k);
        PyTuple_SET_ITEM(pair, 0, k);
        PyTuple_SET_ITEM(pair, 1, sealed);
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

static PyObject *py_unseal(PyObject *self, PyObject *args) {
    /* (key, stored) -> the value, or None if the seal does not match */
    PyObject *k, *stored;
    if (!PyArg_ParseTuple(args, "O!O!", &PyBytes_Type, &k, &PyBytes_Type, &stored)) return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(stored) - 4;
    if (n < 0) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(stored);
    uint32_t want = (uint32_t)s[n] << 24 | (uint32_t)s[n + 1] << 16 | (uint32_t)s[n + 2] << 8
                    | (uint32_t)s[n + 3];
    if (row_crc(k, (const char *)s, n) != want) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)s, n);
}

static PyMethodDef methods[] = {
    {"seal_rows", py_seal_rows, METH_O, "Seal (key, value) rows with crc32(key || value)."},
    {"unseal", py_unseal, METH_VARARGS, "The value of a sealed row, or None if damaged."},
    {"unpack", py_unpack, METH_VARARGS, "Parse canonical wire msgpack (ValueError on any doubt)."},
    {"decoder", py_decoder, METH_VARARGS, "A C record decoder with a Python fallback."},
    {"state", py_state, METH_O, "The state tuple of a decoder."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._speedups", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__speedups(void) {
    crc_init();
    return PyModule_Create(&module);
}
