#include "image/h5.hpp"

#include "image/error.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

namespace ckpt::image::h5 {

void quiet_library() {
    static std::once_flag once;
    std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {
herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
    auto* out = static_cast<std::vector<std::string>*>(data);
    if (n < 8 && err->desc != nullptr) out->emplace_back(err->desc);
    return 0;
}
}  // namespace

std::string last_error() {
    std::vector<std::string> messages;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &messages);
    H5Eclear2(H5E_DEFAULT);
    if (messages.empty()) return {};
    // The most specific message says what was wrong; the outermost says
    // which API step failed.
    std::string text = messages.front();
    if (messages.size() > 1 && messages.back() != messages.front()) text += " (" + messages.back() + ")";
    // HDF5 puts ctime() output, with its newline, into some messages:
    // errors are reported as one line.
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

void Hid::reset() {
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
        case H5I_FILE: H5Fclose(id_); break;
        case H5I_GROUP: H5Gclose(id_); break;
        case H5I_DATASET: H5Dclose(id_); break;
        case H5I_DATASPACE: H5Sclose(id_); break;
        case H5I_DATATYPE: H5Tclose(id_); break;
        case H5I_ATTR: H5Aclose(id_); break;
        case H5I_GENPROP_LST: H5Pclose(id_); break;
        default: H5Idec_ref(id_); break;
    }
    id_ = H5I_INVALID_HID;
}

Hid check(hid_t id, const std::string& file, const std::string& object, const std::string& what) {
    if (id < 0) {
        std::string detail = last_error();
        throw ImageError(file, object, detail.empty() ? what : what + ": " + detail);
    }
    return Hid(id);
}

void check(herr_t rc, const std::string& file, const std::string& object, const std::string& what) {
    if (rc < 0) {
        std::string detail = last_error();
        throw ImageError(file, object, detail.empty() ? what : what + ": " + detail);
    }
}

std::string object_path(hid_t obj) {
    ssize_t n = H5Iget_name(obj, nullptr, 0);
    if (n <= 0) return "?";
    std::string s(static_cast<size_t>(n), '\0');
    H5Iget_name(obj, s.data(), s.size() + 1);
    return s;
}

std::string file_name(hid_t obj) {
    ssize_t n = H5Fget_name(obj, nullptr, 0);
    if (n <= 0) return "?";
    std::string s(static_cast<size_t>(n), '\0');
    H5Fget_name(obj, s.data(), s.size() + 1);
    return s;
}

bool link_exists(hid_t loc, const std::string& name) {
    htri_t r = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
    if (r < 0) H5Eclear2(H5E_DEFAULT);
    return r > 0;
}

namespace {

void write_scalar_attr(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type, const void* value) {
    const std::string file = file_name(obj), where = object_path(obj);
    if (H5Aexists(obj, name.c_str()) > 0) check(H5Adelete(obj, name.c_str()), file, where, "cannot replace attribute " + name);
    Hid space = check(H5Screate(H5S_SCALAR), file, where, "cannot create dataspace");
    Hid attr = check(H5Acreate2(obj, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), file, where,
                     "cannot create attribute " + name);
    check(H5Awrite(attr, mem_type, value), file, where, "cannot write attribute " + name);
}

// Opens an attribute if present; nullopt when absent.
std::optional<Hid> open_attr(hid_t obj, const std::string& name) {
    htri_t exists = H5Aexists(obj, name.c_str());
    if (exists < 0) {
        std::string detail = last_error();
        throw ImageError(file_name(obj), object_path(obj), "cannot look up attribute " + name + ": " + detail);
    }
    if (exists == 0) return std::nullopt;
    return check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), file_name(obj), object_path(obj), "cannot open attribute " + name);
}

template <class T>
std::optional<T> read_integer_attr(hid_t obj, const std::string& name, hid_t mem_type) {
    auto attr = open_attr(obj, name);
    if (!attr) return std::nullopt;
    Hid type = Hid(H5Aget_type(*attr));
    Hid space = Hid(H5Aget_space(*attr));
    if (!type.valid() || H5Tget_class(type) != H5T_INTEGER || !space.valid() || H5Sget_simple_extent_npoints(space) != 1)
        throw ImageError(file_name(obj), object_path(obj), "attribute " + name + " is not a scalar integer");
    T value{};
    check(H5Aread(*attr, mem_type, &value), file_name(obj), object_path(obj), "cannot read attribute " + name);
    return value;
}

}  // namespace

void set_attr_u64(hid_t obj, const std::string& name, uint64_t value) {
    write_scalar_attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

void set_attr_i64(hid_t obj, const std::string& name, int64_t value) {
    write_scalar_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void set_attr_str(hid_t obj, const std::string& name, const std::string& value) {
    const std::string file = file_name(obj), where = object_path(obj);
    Hid type = check(H5Tcopy(H5T_C_S1), file, where, "cannot create string type");
    check(H5Tset_size(type, value.empty() ? 1 : value.size()), file, where, "cannot size string type");
    check(H5Tset_cset(type, H5T_CSET_UTF8), file, where, "cannot set string charset");
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    write_scalar_attr(obj, name, type, type, padded.data());
}

std::optional<uint64_t> get_attr_u64(hid_t obj, const std::string& name) {
    return read_integer_attr<uint64_t>(obj, name, H5T_NATIVE_UINT64);
}

std::optional<int64_t> get_attr_i64(hid_t obj, const std::string& name) {
    return read_integer_attr<int64_t>(obj, name, H5T_NATIVE_INT64);
}

std::optional<std::string> get_attr_str(hid_t obj, const std::string& name) {
    auto attr = open_attr(obj, name);
    if (!attr) return std::nullopt;
    const std::string file = file_name(obj), where = object_path(obj);
    Hid type = Hid(H5Aget_type(*attr));
    Hid space = Hid(H5Aget_space(*attr));
    if (!type.valid() || H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0 || !space.valid() ||
        H5Sget_simple_extent_npoints(space) != 1)
        throw ImageError(file, where, "attribute " + name + " is not a single fixed-length string");
    size_t size = H5Tget_size(type);
    constexpr size_t kMaxAttrString = 1 << 16;
    if (size == 0 || size > kMaxAttrString) throw ImageError(file, where, "attribute " + name + " has an implausible length");
    std::string value(size, '\0');
    check(H5Aread(*attr, type, value.data()), file, where, "cannot read attribute " + name);
    value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
    return value;
}

namespace {
[[noreturn]] void missing_attr(hid_t obj, const std::string& name) {
    throw ImageError(file_name(obj), object_path(obj), "attribute " + name + " is missing");
}
}  // namespace

uint64_t require_attr_u64(hid_t obj, const std::string& name) {
    auto v = get_attr_u64(obj, name);
    if (!v) missing_attr(obj, name);
    return *v;
}

int64_t require_attr_i64(hid_t obj, const std::string& name) {
    auto v = get_attr_i64(obj, name);
    if (!v) missing_attr(obj, name);
    return *v;
}

std::string require_attr_str(hid_t obj, const std::string& name) {
    auto v = get_attr_str(obj, name);
    if (!v) missing_attr(obj, name);
    return *v;
}

Hid create_group(hid_t loc, const std::string& name) {
    return check(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), file_name(loc),
                 object_path(loc) + "/" + name, "cannot create group");
}

namespace {

// Opens loc/name one component at a time. Each must be a hard link: a writer
// makes nothing else, and following links is unsafe (libhdf5 1.10 cannot
// close a group reached through an external link back into the same file,
// which then stays open).
Hid open_hard_path(hid_t loc, const std::string& name, const std::string& kind) {
    const std::string file = file_name(loc);
    std::string where = object_path(loc);
    if (where == "/") where.clear();
    Hid current;
    hid_t at = loc;
    size_t begin = 0;
    while (begin <= name.size()) {
        const size_t slash = std::min(name.find('/', begin), name.size());
        const std::string part = name.substr(begin, slash - begin);
        const bool last = slash == name.size();
        begin = slash + 1;
        if (part.empty()) throw ImageError(file, where + "/" + name, "is not a plain path");
        where += "/" + part;
        const std::string what = last ? kind : "group";
        if (!link_exists(at, part)) throw ImageError(file, where, what + " is missing");
        H5L_info_t info{};
        if (H5Lget_info(at, part.c_str(), &info, H5P_DEFAULT) < 0) {
            H5Eclear2(H5E_DEFAULT);
            throw ImageError(file, where, "cannot read the link to the " + what);
        }
        if (info.type != H5L_TYPE_HARD)
            throw ImageError(file, where, std::string(info.type == H5L_TYPE_SOFT ? "is a soft" : "is an external") +
                                              " link, not a " + what + " (images hold only hard links)");
        Hid next = check(H5Oopen(at, part.c_str(), H5P_DEFAULT), file, where, "cannot open " + what);
        const H5I_type_t expected = what == "group" ? H5I_GROUP : H5I_DATASET;
        if (H5Iget_type(next) != expected) throw ImageError(file, where, "is not a " + what);
        current = std::move(next);
        at = current;
    }
    return current;
}

}  // namespace

Hid open_group(hid_t loc, const std::string& name) { return open_hard_path(loc, name, "group"); }

Hid open_dataset(hid_t loc, const std::string& name) { return open_hard_path(loc, name, "dataset"); }

}  // namespace ckpt::image::h5
