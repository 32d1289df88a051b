// Typed tables: a record struct plus its field list (in schema.hpp) gives the
// HDF5 compound type, the packing to and from HDF5's memory layout, the
// canonical checksum and a generic printer. Every table dataset carries an
// "xxh3_64" attribute over its rows, verified on every read.
#pragma once

#include "image/checksum.hpp"
#include "image/error.hpp"
#include "image/h5.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace ckpt::image {

template <class Rec, class M>
struct Field {
    const char* name;
    M Rec::*member;
    const char* unit;  // "" when dimensionless
    const char* doc;
};

template <class Rec, class M>
constexpr Field<Rec, M> field(const char* name, M Rec::*member, const char* unit, const char* doc) {
    return {name, member, unit, doc};
}

// Specialised in schema.hpp for each record type: the dataset name, a
// description, and a std::tuple of Fields.
template <class Rec>
struct TableSchema;

// Largest row count any table may claim; a larger one is a damaged image.
inline constexpr uint64_t kMaxTableRows = uint64_t{1} << 26;
// Longest string field accepted on read.
inline constexpr size_t kMaxStringBytes = 1 << 20;

namespace detail {

template <class M>
struct FieldTraits;

template <class Int>
    requires std::is_integral_v<Int>
struct FieldTraits<Int> {
    static constexpr size_t packed_size = sizeof(Int);
    static hid_t mem_type() {
        if constexpr (std::is_same_v<Int, uint8_t>) return H5T_NATIVE_UINT8;
        else if constexpr (std::is_same_v<Int, uint16_t>) return H5T_NATIVE_UINT16;
        else if constexpr (std::is_same_v<Int, uint32_t>) return H5T_NATIVE_UINT32;
        else if constexpr (std::is_same_v<Int, uint64_t>) return H5T_NATIVE_UINT64;
        else if constexpr (std::is_same_v<Int, int32_t>) return H5T_NATIVE_INT32;
        else if constexpr (std::is_same_v<Int, int64_t>) return H5T_NATIVE_INT64;
        else static_assert(sizeof(Int) == 0, "unsupported integer field");
    }
    static hid_t file_type() {
        if constexpr (std::is_same_v<Int, uint8_t>) return H5T_STD_U8LE;
        else if constexpr (std::is_same_v<Int, uint16_t>) return H5T_STD_U16LE;
        else if constexpr (std::is_same_v<Int, uint32_t>) return H5T_STD_U32LE;
        else if constexpr (std::is_same_v<Int, uint64_t>) return H5T_STD_U64LE;
        else if constexpr (std::is_same_v<Int, int32_t>) return H5T_STD_I32LE;
        else if constexpr (std::is_same_v<Int, int64_t>) return H5T_STD_I64LE;
    }
    static constexpr bool owned_copy = false;  // mem_type/file_type are predefined, never closed
    static void pack(uint8_t* dst, const Int& v) { std::memcpy(dst, &v, sizeof v); }
    static void unpack(const uint8_t* src, Int& v) { std::memcpy(&v, src, sizeof v); }
    static void hash(Hasher& h, const Int& v) { h.integer(v); }
    static std::string type_name() {
        return std::string(std::is_signed_v<Int> ? "int" : "uint") + std::to_string(8 * sizeof(Int));
    }
};

template <class Int, size_t N>
struct FieldTraits<std::array<Int, N>> {
    static constexpr size_t packed_size = sizeof(Int) * N;
    static hid_t make(hid_t base) {
        hsize_t dims[1] = {N};
        return H5Tarray_create2(base, 1, dims);
    }
    static hid_t mem_type() { return make(FieldTraits<Int>::mem_type()); }
    static hid_t file_type() { return make(FieldTraits<Int>::file_type()); }
    static constexpr bool owned_copy = true;
    static void pack(uint8_t* dst, const std::array<Int, N>& v) { std::memcpy(dst, v.data(), packed_size); }
    static void unpack(const uint8_t* src, std::array<Int, N>& v) { std::memcpy(v.data(), src, packed_size); }
    static void hash(Hasher& h, const std::array<Int, N>& v) {
        for (Int x : v) h.integer(x);
    }
    static std::string type_name() { return FieldTraits<Int>::type_name() + "[" + std::to_string(N) + "]"; }
};

template <>
struct FieldTraits<std::string> {
    static constexpr size_t packed_size = sizeof(char*);
    static hid_t make() {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        return t;
    }
    static hid_t mem_type() { return make(); }
    static hid_t file_type() { return make(); }
    static constexpr bool owned_copy = true;
    static void pack(uint8_t* dst, const std::string& v) {
        const char* p = v.c_str();
        std::memcpy(dst, &p, sizeof p);
    }
    static void unpack(const uint8_t* src, std::string& v) {
        const char* p = nullptr;
        std::memcpy(&p, src, sizeof p);
        v = p ? std::string(p, strnlen(p, kMaxStringBytes + 1)) : std::string();
    }
    static void hash(Hasher& h, const std::string& v) { h.string(v); }
    static std::string type_name() { return "string"; }
};

template <class F>
using member_t = std::remove_cvref_t<decltype(std::declval<typename std::remove_cvref_t<F>>().member)>;

template <class Rec, class M>
M field_member_type(Field<Rec, M>);

template <class Rec, class Fn>
void for_each_field(Fn&& fn) {
    std::apply([&](const auto&... f) { (fn(f), ...); }, TableSchema<Rec>::fields);
}

template <class Rec>
size_t packed_row_size() {
    size_t size = 0;
    for_each_field<Rec>([&](const auto& f) { size += FieldTraits<decltype(field_member_type(f))>::packed_size; });
    return size;
}

// Builds the compound type for Rec; file_side selects the on-disk types.
template <class Rec>
h5::Hid compound_type(bool file_side) {
    h5::Hid type(H5Tcreate(H5T_COMPOUND, packed_row_size<Rec>()));
    size_t offset = 0;
    for_each_field<Rec>([&](const auto& f) {
        using Traits = FieldTraits<decltype(field_member_type(f))>;
        hid_t member = file_side ? Traits::file_type() : Traits::mem_type();
        H5Tinsert(type, f.name, offset, member);
        if constexpr (Traits::owned_copy) H5Tclose(member);
        offset += Traits::packed_size;
    });
    return type;
}

template <class Rec>
bool has_strings() {
    bool any = false;
    for_each_field<Rec>([&](const auto& f) { any |= std::is_same_v<decltype(field_member_type(f)), std::string>; });
    return any;
}

}  // namespace detail

// Canonical checksum of a table: row count, then each row's fields in order.
template <class Rec>
uint64_t table_checksum(const std::vector<Rec>& rows) {
    Hasher h;
    h.integer<uint64_t>(rows.size());
    for (const Rec& r : rows)
        detail::for_each_field<Rec>([&](const auto& f) {
            detail::FieldTraits<decltype(detail::field_member_type(f))>::hash(h, r.*(f.member));
        });
    return h.digest();
}

// Names of a table's fields with their types, units and meaning (for docs
// and ckpt-info --schema).
struct FieldDescription {
    std::string name, type, unit, doc;
};
template <class Rec>
std::vector<FieldDescription> describe_fields() {
    std::vector<FieldDescription> out;
    detail::for_each_field<Rec>([&](const auto& f) {
        out.push_back({f.name, detail::FieldTraits<decltype(detail::field_member_type(f))>::type_name(), f.unit, f.doc});
    });
    return out;
}

// Rows in the memory layout of compound_type<Rec>(false). String fields
// point into `rows`, which must outlive the result.
template <class Rec>
std::vector<uint8_t> pack_rows(const std::vector<Rec>& rows) {
    const size_t row_size = detail::packed_row_size<Rec>();
    std::vector<uint8_t> packed(row_size * rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        size_t offset = 0;
        detail::for_each_field<Rec>([&](const auto& f) {
            using Traits = detail::FieldTraits<decltype(detail::field_member_type(f))>;
            Traits::pack(packed.data() + i * row_size + offset, rows[i].*(f.member));
            offset += Traits::packed_size;
        });
    }
    return packed;
}

template <class Rec>
void write_table(hid_t loc, const std::string& name, const std::vector<Rec>& rows) {
    const std::string file = h5::file_name(loc);
    const std::string where = h5::object_path(loc) + "/" + name;
    const std::vector<uint8_t> packed = pack_rows(rows);
    h5::Hid file_type = detail::compound_type<Rec>(true);
    h5::Hid mem_type = detail::compound_type<Rec>(false);
    hsize_t dims[1] = {rows.size()};
    h5::Hid space = h5::check(H5Screate_simple(1, dims, nullptr), file, where, "cannot create dataspace");
    h5::Hid dset = h5::check(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             file, where, "cannot create table");
    if (!rows.empty())
        h5::check(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()), file, where,
                  "cannot write table");
    h5::set_attr_u64(dset, "xxh3_64", table_checksum(rows));
}

// Reads a table, checking its shape, that it has every field of Rec, and its
// checksum. Throws ImageError naming the file and dataset otherwise.
template <class Rec>
std::vector<Rec> read_table(hid_t loc, const std::string& name) {
    h5::Hid dset = h5::open_dataset(loc, name);
    const std::string file = h5::file_name(dset);
    const std::string where = h5::object_path(dset);
    h5::Hid disk_type = h5::check(H5Dget_type(dset), file, where, "cannot read type");
    if (H5Tget_class(disk_type) != H5T_COMPOUND) throw ImageError(file, where, "is not a table (compound dataset)");
    std::string missing;
    detail::for_each_field<Rec>([&](const auto& f) {
        if (H5Tget_member_index(disk_type, f.name) < 0) missing += missing.empty() ? f.name : std::string(", ") + f.name;
    });
    H5Eclear2(H5E_DEFAULT);
    if (!missing.empty()) throw ImageError(file, where, "table lacks field(s) " + missing);

    h5::Hid space = h5::check(H5Dget_space(dset), file, where, "cannot read dataspace");
    if (H5Sget_simple_extent_ndims(space) != 1) throw ImageError(file, where, "table is not one-dimensional");
    hsize_t dims[1] = {0};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    if (dims[0] > kMaxTableRows) throw ImageError(file, where, "implausible row count " + std::to_string(dims[0]));
    // Rows the file does not hold are not allocated for.
    if (dims[0] > 0 && H5Dget_storage_size(dset) < dims[0] * H5Tget_size(disk_type))
        throw ImageError(file, where, "claims " + std::to_string(dims[0]) + " rows but stores less than that");
    const uint64_t expected = h5::require_attr_u64(dset, "xxh3_64");

    const size_t row_size = detail::packed_row_size<Rec>();
    std::vector<uint8_t> packed(row_size * dims[0]);
    std::vector<Rec> rows(dims[0]);
    h5::Hid mem_type = detail::compound_type<Rec>(false);
    if (dims[0] > 0) {
        h5::check(H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()), file, where,
                  "cannot read table");
        for (size_t i = 0; i < rows.size(); ++i) {
            size_t offset = 0;
            detail::for_each_field<Rec>([&](const auto& f) {
                using Traits = detail::FieldTraits<decltype(detail::field_member_type(f))>;
                Traits::unpack(packed.data() + i * row_size + offset, rows[i].*(f.member));
                offset += Traits::packed_size;
            });
        }
        if (detail::has_strings<Rec>()) H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, packed.data());
    }
    const uint64_t actual = table_checksum(rows);
    if (actual != expected) throw ImageError(file, where, "checksum mismatch: table is damaged");
    return rows;
}

// A single-row table (e.g. a task's mm fields or credentials).
template <class Rec>
void write_record(hid_t loc, const std::string& name, const Rec& rec) {
    write_table<Rec>(loc, name, std::vector<Rec>{rec});
}

template <class Rec>
Rec read_record(hid_t loc, const std::string& name) {
    auto rows = read_table<Rec>(loc, name);
    if (rows.size() != 1) {
        throw ImageError(h5::file_name(loc), h5::object_path(loc) + "/" + name,
                         "expected exactly one row, found " + std::to_string(rows.size()));
    }
    return rows.front();
}

// Byte arrays with a checksum: XSAVE areas, auxv, pipe contents, MPI payloads.
// dims has one or two entries (rows x row bytes).
void write_blob(hid_t loc, const std::string& name, std::span<const uint8_t> data, std::vector<uint64_t> dims = {});
struct Blob {
    std::vector<uint8_t> data;
    std::vector<uint64_t> dims;
};
Blob read_blob(hid_t loc, const std::string& name, uint64_t max_bytes);

}  // namespace ckpt::image
