// Datatypes: the shim's own type engine (typemap.hpp) packs and unpacks
// application buffers; the proxy makes the same type with the real library
// for the reductions it runs on real types. Pack/Unpack, extents and sizes
// are answered here.
#include "mpi_plugin/shim/shim.hpp"

#include <cstring>
#include <string_view>

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

namespace ckpt::mpi::shim {

namespace {

// The shim's type map of each entry of predefined_types.def, by name.
struct PredefMap {
    std::string_view sym;
    BasicType basic;
};

TypeMap must(TypeResult r) {
    if (!r) die("MPI_Init", std::string("cannot describe a predefined datatype: ") + to_string(r.error()));
    return *std::move(r);
}

}  // namespace

TypeMap predefined_type_map(unsigned index, uint64_t size, uint64_t extent, uint64_t off2, uint64_t size2) {
    static const char* const syms[] = {
#define X(sym, name, sz, ext, o2, s2) #sym,
#include "mpi_plugin/common/predefined_types.def"
#undef X
    };
    const std::string_view sym = syms[index];
    static const PredefMap basics[] = {
        {"char", BasicType::char_},
        {"signed_char", BasicType::signed_char},
        {"unsigned_char", BasicType::unsigned_char},
        {"byte", BasicType::byte},
        {"short", BasicType::short_},
        {"unsigned_short", BasicType::unsigned_short},
        {"int", BasicType::int_},
        {"unsigned", BasicType::unsigned_},
        {"long", BasicType::long_},
        {"unsigned_long", BasicType::unsigned_long},
        {"long_long_int", BasicType::long_long},
        {"unsigned_long_long", BasicType::unsigned_long_long},
        {"float", BasicType::float_},
        {"double", BasicType::double_},
        {"long_double", BasicType::long_double},
        {"wchar", BasicType::wchar},
        {"packed", BasicType::packed},
        {"cxx_bool", BasicType::cxx_bool},
        {"cxx_cplex", BasicType::cxx_float_complex},
        {"cxx_dblcplex", BasicType::cxx_double_complex},
        {"cxx_ldblcplex", BasicType::cxx_long_double_complex},
        {"int8_t", BasicType::int8},
        {"uint8_t", BasicType::uint8},
        {"int16_t", BasicType::int16},
        {"uint16_t", BasicType::uint16},
        {"int32_t", BasicType::int32},
        {"uint32_t", BasicType::uint32},
        {"int64_t", BasicType::int64},
        {"uint64_t", BasicType::uint64},
        {"aint", BasicType::aint},
        {"offset", BasicType::offset},
        {"count", BasicType::count},
        {"c_bool", BasicType::c_bool},
        {"c_float_complex", BasicType::c_float_complex},
        {"c_double_complex", BasicType::c_double_complex},
        {"c_long_double_complex", BasicType::c_long_double_complex},
        {"lb", BasicType::lb_marker},
        {"ub", BasicType::ub_marker},
    };
    for (const auto& b : basics)
        if (b.sym == sym) return must(TypeMap::predefined(b.basic));
    static const std::pair<std::string_view, PairType> pairs[] = {
        {"float_int", PairType::float_int}, {"double_int", PairType::double_int},     {"long_int", PairType::long_int},
        {"2int", PairType::two_int},        {"short_int", PairType::short_int}, {"longdbl_int", PairType::long_double_int},
    };
    for (const auto& [name, p] : pairs)
        if (name == sym) return must(TypeMap::pair(p));
    if (size == 0) return must(TypeMap::contiguous(0, must(TypeMap::predefined(BasicType::byte))));
    // Fortran types and the Fortran pairs: blocks of bytes of their size
    // (what matters here is the size and extent; the proxy reduces on the
    // real type).
    if (size2) {
        TypeMap one = must(TypeMap::predefined(BasicType::byte, static_cast<uint32_t>(size2)));
        return must(TypeMap::contiguous(2, one));
    }
    (void)extent;
    (void)off2;
    return must(TypeMap::predefined(BasicType::byte, static_cast<uint32_t>(size)));
}

uint64_t packed_bytes(MPI_Datatype t, int64_t count) {
    const int64_t n = packed_size(type_data(t).map, count);
    return n < 0 ? 0 : static_cast<uint64_t>(n);
}

void pack_into(void* out, const void* buf, int64_t count, MPI_Datatype t) {
    const TypeMap& m = type_data(t).map;
    if (count <= 0) return;
    if (m.is_contiguous()) {
        memcpy(out, buf, static_cast<size_t>(m.size() * static_cast<uint64_t>(count)));
        return;
    }
    pack(m, buf, count, out);
}

void unpack_from(const void* in, uint64_t bytes, void* buf, int64_t count, MPI_Datatype t) {
    const TypeMap& m = type_data(t).map;
    const uint64_t full = packed_bytes(t, count);
    if (bytes > full) bytes = full;
    if (bytes == 0) return;
    if (m.is_contiguous()) {
        memcpy(buf, in, bytes);
        return;
    }
    const uint64_t size = m.size();
    const int64_t whole = static_cast<int64_t>(bytes / size);
    if (whole > 0) unpack(m, in, whole, buf);
    uint64_t rest = bytes - static_cast<uint64_t>(whole) * size;
    if (!rest) return;
    // A message that ends inside an element fills the first bytes of its runs.
    const auto* src = static_cast<const unsigned char*>(in) + static_cast<uint64_t>(whole) * size;
    auto* base = static_cast<unsigned char*>(buf) + whole * m.extent();
    m.for_each_run([&](int64_t disp, uint64_t len) {
        if (!rest) return;
        const uint64_t n = std::min(rest, len);
        memcpy(base + disp, src, n);
        src += n;
        rest -= n;
    });
}

Span layout_span(MPI_Datatype t, int64_t count) {
    const TypeMap& m = type_data(t).map;
    if (count <= 0 || m.size() == 0) return {0, 0};
    const int64_t start = m.true_lb();
    const int64_t end = (count - 1) * m.extent() + m.true_ub();
    return {start, static_cast<uint64_t>(end - start)};
}

void copy_layout_out(void* user_buf, const void* span_origin, int64_t count, MPI_Datatype t) {
    const TypeMap& m = type_data(t).map;
    auto* dst = static_cast<unsigned char*>(user_buf);
    const auto* src = static_cast<const unsigned char*>(span_origin);
    for (int64_t i = 0; i < count; ++i) {
        const int64_t base = i * m.extent();
        m.for_each_run([&](int64_t disp, uint64_t len) { memcpy(dst + base + disp, src + base + disp, len); });
    }
}

int64_t elements_in(MPI_Datatype t, uint64_t bytes) { return get_elements(type_data(t).map, static_cast<int64_t>(bytes)); }

}  // namespace ckpt::mpi::shim

namespace {

int type_error(TypeError e) {
    switch (e) {
        case TypeError::count: return MPI_ERR_COUNT;
        case TypeError::type: return MPI_ERR_TYPE;
        case TypeError::no_memory: return MPI_ERR_NO_MEM;
        default: return MPI_ERR_ARG;
    }
}

bool usable(MPI_Datatype t) { return valid_type(t); }

// Makes the new handle and tells the proxy how the type is made (the proxy
// builds the real one; its creation is logged for restarts).
int finish_type(TypeResult r, TypeCtor ctor, CallFrame& c, const std::vector<int64_t>& args, int combiner, std::vector<int> ints,
                std::vector<MPI_Aint> aints, std::vector<MPI_Datatype> types, MPI_Datatype* out) {
    if (!r) return type_error(r.error());
    const uint64_t id = new_id();
    c.arg(static_cast<int64_t>(ctor)).arg(static_cast<int64_t>(id));
    for (int64_t a : args) c.arg(a);
    if (int rc = c.run()) return rc;
    auto* t = new ompi_datatype_t;
    t->id = id;
    t->d = new TypeData(*std::move(r));
    t->d->combiner = combiner;
    t->d->ints = std::move(ints);
    t->d->aints = std::move(aints);
    t->d->types = std::move(types);
    register_type(t);
    *out = t;
    return MPI_SUCCESS;
}

// The _x variants of the size and bounds queries differ from the others only
// in the integer type of their answer.
template <class Int>
int type_size(MPI_Datatype t, Int* size) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *size = static_cast<Int>(t->d->map.size());
    return MPI_SUCCESS;
}

template <class Int>
int type_extent(MPI_Datatype t, Int* lb, Int* extent) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *lb = t->d->map.lb();
    *extent = t->d->map.extent();
    return MPI_SUCCESS;
}

template <class Int>
int type_true_extent(MPI_Datatype t, Int* lb, Int* extent) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *lb = t->d->map.true_lb();
    *extent = t->d->map.true_extent();
    return MPI_SUCCESS;
}

}  // namespace

extern "C" {

int PMPI_Type_contiguous(int count, MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_contiguous");
    if (!usable(old)) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    return finish_type(TypeMap::contiguous(count, old->d->map), TypeCtor::Contiguous, c, {static_cast<int64_t>(old->id), count},
                       MPI_COMBINER_CONTIGUOUS, {count}, {}, {old}, out);
}

int PMPI_Type_vector(int count, int blocklen, int stride, MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_vector");
    if (!usable(old)) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    return finish_type(TypeMap::vector(count, blocklen, stride, old->d->map), TypeCtor::Vector, c,
                       {static_cast<int64_t>(old->id), count, blocklen, stride}, MPI_COMBINER_VECTOR, {count, blocklen, stride}, {}, {old}, out);
}

int PMPI_Type_create_hvector(int count, int blocklen, MPI_Aint stride, MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_create_hvector");
    if (!usable(old)) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    return finish_type(TypeMap::hvector(count, blocklen, stride, old->d->map), TypeCtor::Hvector, c,
                       {static_cast<int64_t>(old->id), count, blocklen, stride}, MPI_COMBINER_HVECTOR, {count, blocklen}, {stride}, {old}, out);
}

int PMPI_Type_indexed(int count, const int blocklens[], const int disps[], MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_indexed");
    if (!usable(old) || count < 0) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const uint64_t b = put_words(c, blocklens, count), d = put_words(c, disps, count);
    std::vector<int> ints = {count};
    ints.insert(ints.end(), blocklens, blocklens + count);
    ints.insert(ints.end(), disps, disps + count);
    return finish_type(TypeMap::indexed({blocklens, static_cast<size_t>(count)}, {disps, static_cast<size_t>(count)}, old->d->map),
                       TypeCtor::Indexed, c, {static_cast<int64_t>(old->id), count, static_cast<int64_t>(b), static_cast<int64_t>(d)},
                       MPI_COMBINER_INDEXED, ints, {}, {old}, out);
}

int PMPI_Type_create_hindexed(int count, const int blocklens[], const MPI_Aint disps[], MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_create_hindexed");
    if (!usable(old) || count < 0) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const uint64_t b = put_words(c, blocklens, count), d = put_words(c, disps, count);
    std::vector<int64_t> d64(disps, disps + count);
    std::vector<int> ints = {count};
    ints.insert(ints.end(), blocklens, blocklens + count);
    return finish_type(TypeMap::hindexed({blocklens, static_cast<size_t>(count)}, d64, old->d->map), TypeCtor::Hindexed, c,
                       {static_cast<int64_t>(old->id), count, static_cast<int64_t>(b), static_cast<int64_t>(d)}, MPI_COMBINER_HINDEXED, ints,
                       {disps, disps + count}, {old}, out);
}

int PMPI_Type_create_indexed_block(int count, int blocklen, const int disps[], MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_create_indexed_block");
    if (!usable(old) || count < 0) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const uint64_t d = put_words(c, disps, count);
    std::vector<int> ints = {count, blocklen};
    ints.insert(ints.end(), disps, disps + count);
    return finish_type(TypeMap::indexed_block(blocklen, {disps, static_cast<size_t>(count)}, old->d->map), TypeCtor::IndexedBlock, c,
                       {static_cast<int64_t>(old->id), count, blocklen, static_cast<int64_t>(d)}, MPI_COMBINER_INDEXED_BLOCK, ints, {}, {old}, out);
}

int PMPI_Type_create_hindexed_block(int count, int blocklen, const MPI_Aint disps[], MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_create_hindexed_block");
    if (!usable(old) || count < 0) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const uint64_t d = put_words(c, disps, count);
    std::vector<int64_t> d64(disps, disps + count);
    return finish_type(TypeMap::hindexed_block(blocklen, d64, old->d->map), TypeCtor::HindexedBlock, c,
                       {static_cast<int64_t>(old->id), count, blocklen, static_cast<int64_t>(d)}, MPI_COMBINER_HINDEXED_BLOCK, {count, blocklen},
                       {disps, disps + count}, {old}, out);
}

int PMPI_Type_create_struct(int count, const int blocklens[], const MPI_Aint disps[], const MPI_Datatype types[], MPI_Datatype* out) {
    require_init("MPI_Type_create_struct");
    if (count < 0) return MPI_ERR_COUNT;
    std::vector<StructBlock> blocks;
    std::vector<int64_t> ids;
    for (int i = 0; i < count; ++i) {
        if (!usable(types[i])) return MPI_ERR_TYPE;
        blocks.push_back({blocklens[i], disps[i], &types[i]->d->map});
        ids.push_back(static_cast<int64_t>(types[i]->id));
    }
    CallFrame c(Call::TypeCreate);
    const uint64_t b = put_words(c, blocklens, count), d = put_words(c, disps, count), t = put_words(c, ids.data(), count);
    std::vector<int> ints = {count};
    ints.insert(ints.end(), blocklens, blocklens + count);
    return finish_type(TypeMap::create_struct(blocks), TypeCtor::Struct, c,
                       {0, count, static_cast<int64_t>(b), static_cast<int64_t>(d), static_cast<int64_t>(t)}, MPI_COMBINER_STRUCT, ints,
                       {disps, disps + count}, {types, types + count}, out);
}

int PMPI_Type_create_subarray(int ndims, const int sizes[], const int subsizes[], const int starts[], int order, MPI_Datatype old,
                              MPI_Datatype* out) {
    require_init("MPI_Type_create_subarray");
    if (!usable(old) || ndims < 0) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const uint64_t sz = put_words(c, sizes, ndims), sub = put_words(c, subsizes, ndims), st = put_words(c, starts, ndims);
    std::vector<int> ints = {ndims};
    ints.insert(ints.end(), sizes, sizes + ndims);
    ints.insert(ints.end(), subsizes, subsizes + ndims);
    ints.insert(ints.end(), starts, starts + ndims);
    ints.push_back(order);
    const size_t n = static_cast<size_t>(ndims);
    return finish_type(TypeMap::create_subarray({sizes, n}, {subsizes, n}, {starts, n}, order == MPI_ORDER_FORTRAN ? Order::fortran : Order::c,
                                                old->d->map),
                       TypeCtor::Subarray, c,
                       {static_cast<int64_t>(old->id), ndims, static_cast<int64_t>(sz), static_cast<int64_t>(sub), static_cast<int64_t>(st), order},
                       MPI_COMBINER_SUBARRAY, ints, {}, {old}, out);
}

int PMPI_Type_create_resized(MPI_Datatype old, MPI_Aint lb, MPI_Aint extent, MPI_Datatype* out) {
    require_init("MPI_Type_create_resized");
    if (!usable(old)) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    return finish_type(TypeMap::create_resized(old->d->map, lb, extent), TypeCtor::Resized, c, {static_cast<int64_t>(old->id), lb, extent},
                       MPI_COMBINER_RESIZED, {}, {lb, extent}, {old}, out);
}

int PMPI_Type_dup(MPI_Datatype old, MPI_Datatype* out) {
    require_init("MPI_Type_dup");
    if (!usable(old)) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeCreate);
    const int rc = finish_type(TypeMap::dup(old->d->map), TypeCtor::Dup, c, {static_cast<int64_t>(old->id)}, MPI_COMBINER_DUP, {}, {}, {old}, out);
    if (rc == MPI_SUCCESS) {
        (*out)->d->committed = old->d->committed;
        copy_attributes(old, *out);
    }
    return rc;
}

// MPI-1 names.
int PMPI_Type_hvector(int count, int blocklen, MPI_Aint stride, MPI_Datatype old, MPI_Datatype* out) {
    return PMPI_Type_create_hvector(count, blocklen, stride, old, out);
}
int PMPI_Type_hindexed(int count, int blocklens[], MPI_Aint disps[], MPI_Datatype old, MPI_Datatype* out) {
    return PMPI_Type_create_hindexed(count, blocklens, disps, old, out);
}
int PMPI_Type_struct(int count, int blocklens[], MPI_Aint disps[], MPI_Datatype types[], MPI_Datatype* out) {
    return PMPI_Type_create_struct(count, blocklens, disps, types, out);
}

int PMPI_Type_commit(MPI_Datatype* t) {
    if (!usable(*t)) return MPI_ERR_TYPE;
    (*t)->d->committed = true;
    return MPI_SUCCESS;
}

int PMPI_Type_free(MPI_Datatype* t) {
    require_init("MPI_Type_free");
    if (!usable(*t) || (*t)->d->predefined) return MPI_ERR_TYPE;
    CallFrame c(Call::TypeFree);
    c.arg(static_cast<int64_t>((*t)->id));
    const int rc = c.run();
    delete_attributes(*t);
    forget_type((*t)->id);
    delete (*t)->d;
    delete *t;
    *t = MPI_DATATYPE_NULL;
    return rc;
}

int PMPI_Type_size_x(MPI_Datatype t, MPI_Count* size) { return type_size(t, size); }
int PMPI_Type_size(MPI_Datatype t, int* size) { return type_size(t, size); }
int PMPI_Type_get_extent_x(MPI_Datatype t, MPI_Count* lb, MPI_Count* extent) { return type_extent(t, lb, extent); }
int PMPI_Type_get_extent(MPI_Datatype t, MPI_Aint* lb, MPI_Aint* extent) { return type_extent(t, lb, extent); }
int PMPI_Type_get_true_extent_x(MPI_Datatype t, MPI_Count* lb, MPI_Count* extent) { return type_true_extent(t, lb, extent); }
int PMPI_Type_get_true_extent(MPI_Datatype t, MPI_Aint* lb, MPI_Aint* extent) { return type_true_extent(t, lb, extent); }
int PMPI_Type_extent(MPI_Datatype t, MPI_Aint* extent) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *extent = t->d->map.extent();
    return MPI_SUCCESS;
}
int PMPI_Type_lb(MPI_Datatype t, MPI_Aint* lb) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *lb = t->d->map.lb();
    return MPI_SUCCESS;
}
int PMPI_Type_ub(MPI_Datatype t, MPI_Aint* ub) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *ub = t->d->map.ub();
    return MPI_SUCCESS;
}

int PMPI_Type_set_name(MPI_Datatype t, const char* name) {
    if (!usable(t)) return MPI_ERR_TYPE;
    t->d->name = std::string(name).substr(0, MPI_MAX_OBJECT_NAME - 1);
    return MPI_SUCCESS;
}
int PMPI_Type_get_name(MPI_Datatype t, char* name, int* len) {
    if (!usable(t)) return MPI_ERR_TYPE;
    snprintf(name, MPI_MAX_OBJECT_NAME, "%s", t->d->name.c_str());
    *len = static_cast<int>(strlen(name));
    return MPI_SUCCESS;
}

int PMPI_Type_get_envelope(MPI_Datatype t, int* ni, int* na, int* nd, int* combiner) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *ni = static_cast<int>(t->d->ints.size());
    *na = static_cast<int>(t->d->aints.size());
    *nd = static_cast<int>(t->d->predefined ? 0 : t->d->types.size());
    *combiner = t->d->combiner;
    return MPI_SUCCESS;
}
int PMPI_Type_get_contents(MPI_Datatype t, int maxi, int maxa, int maxd, int ints[], MPI_Aint aints[], MPI_Datatype types[]) {
    if (!usable(t) || t->d->predefined) return MPI_ERR_TYPE;
    for (int i = 0; i < maxi && i < static_cast<int>(t->d->ints.size()); ++i) ints[i] = t->d->ints[static_cast<size_t>(i)];
    for (int i = 0; i < maxa && i < static_cast<int>(t->d->aints.size()); ++i) aints[i] = t->d->aints[static_cast<size_t>(i)];
    for (int i = 0; i < maxd && i < static_cast<int>(t->d->types.size()); ++i) types[i] = t->d->types[static_cast<size_t>(i)];
    return MPI_SUCCESS;
}

int PMPI_Pack_size(int count, MPI_Datatype t, MPI_Comm, int* size) {
    if (!usable(t)) return MPI_ERR_TYPE;
    *size = static_cast<int>(packed_bytes(t, count));
    return MPI_SUCCESS;
}

int PMPI_Pack(const void* in, int count, MPI_Datatype t, void* out, int outsize, int* position, MPI_Comm) {
    if (!usable(t)) return MPI_ERR_TYPE;
    const uint64_t n = packed_bytes(t, count);
    if (*position + static_cast<int64_t>(n) > outsize) return MPI_ERR_TRUNCATE;
    pack_into(static_cast<unsigned char*>(out) + *position, in, count, t);
    *position += static_cast<int>(n);
    return MPI_SUCCESS;
}

int PMPI_Unpack(const void* in, int insize, int* position, void* out, int count, MPI_Datatype t, MPI_Comm) {
    if (!usable(t)) return MPI_ERR_TYPE;
    const uint64_t n = packed_bytes(t, count);
    if (*position + static_cast<int64_t>(n) > insize) return MPI_ERR_TRUNCATE;
    unpack_from(static_cast<const unsigned char*>(in) + *position, n, out, count, t);
    *position += static_cast<int>(n);
    return MPI_SUCCESS;
}

int PMPI_Get_address(const void* location, MPI_Aint* address) {
    *address = reinterpret_cast<MPI_Aint>(location);
    return MPI_SUCCESS;
}
int PMPI_Address(void* location, MPI_Aint* address) { return PMPI_Get_address(location, address); }
// (mpi.h makes MPI_Aint_add and MPI_Aint_diff macros; the exported
// functions are for binaries of other Open MPI versions.)
#undef PMPI_Aint_add
#undef PMPI_Aint_diff
MPI_Aint PMPI_Aint_add(MPI_Aint base, MPI_Aint disp) { return base + disp; }
MPI_Aint PMPI_Aint_diff(MPI_Aint a, MPI_Aint b) { return a - b; }

// ---- attributes (the keyvals are shared with communicators: comm.cpp) -------------------
int PMPI_Type_create_keyval(MPI_Type_copy_attr_function* copy, MPI_Type_delete_attr_function* del, int* keyval, void* extra) {
    return create_keyval({.kind = 1, .type_copy = copy, .type_delete = del, .extra = extra}, keyval);
}
int PMPI_Type_free_keyval(int* keyval) { return free_keyval(keyval); }
int PMPI_Type_set_attr(MPI_Datatype t, int keyval, void* value) {
    if (!usable(t)) return MPI_ERR_TYPE;
    set_attribute(t, keyval, value);
    return MPI_SUCCESS;
}
int PMPI_Type_get_attr(MPI_Datatype t, int keyval, void* value, int* flag) {
    if (!usable(t)) return MPI_ERR_TYPE;
    get_attr(t->d->attrs, keyval, value, flag);
    return MPI_SUCCESS;
}
int PMPI_Type_delete_attr(MPI_Datatype t, int keyval) {
    if (!usable(t)) return MPI_ERR_TYPE;
    delete_attribute(t, keyval);
    return MPI_SUCCESS;
}

// ---- reduction operations -------------------------------------------------------------
int PMPI_Op_create(MPI_User_function* fn, int commute, MPI_Op* op) {
    require_init("MPI_Op_create");
    auto* o = new ompi_op_t;
    o->id = new_id();
    o->d = new OpData{fn, commute != 0};
    CallFrame c(Call::OpCreate);
    c.arg(static_cast<int64_t>(o->id)).arg(commute).arg(reinterpret_cast<int64_t>(o));
    if (int rc = c.run()) {
        delete o->d;
        delete o;
        return rc;
    }
    {
        std::lock_guard lock(S().registry_mu);
        S().ops_by_id[o->id] = o;
    }
    *op = o;
    return MPI_SUCCESS;
}

int PMPI_Op_free(MPI_Op* op) {
    require_init("MPI_Op_free");
    if (!*op || !(*op)->d) return MPI_ERR_OP;
    CallFrame c(Call::OpFree);
    c.arg(static_cast<int64_t>((*op)->id));
    c.run();
    {
        std::lock_guard lock(S().registry_mu);
        S().ops_by_id.erase((*op)->id);
    }
    delete (*op)->d;
    delete *op;
    *op = MPI_OP_NULL;
    return MPI_SUCCESS;
}

int PMPI_Op_commutative(MPI_Op op, int* commute) {
    *commute = op->d ? op->d->commute : 1;
    return MPI_SUCCESS;
}

}  // extern "C"
