// Thin RAII layer over the HDF5 C API. Each hid_t is owned by exactly one
// Hid, closed with the function that matches its kind.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace ckpt::image::h5 {

// Silences HDF5's own stderr printing once per process; errors are turned
// into exceptions carrying the library's message instead.
void quiet_library();

// Text of HDF5's current error stack (innermost message), for exceptions.
std::string last_error();

class Hid {
public:
    Hid() = default;
    explicit Hid(hid_t id) : id_(id) {}
    Hid(const Hid&) = delete;
    Hid& operator=(const Hid&) = delete;
    Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
    Hid& operator=(Hid&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = std::exchange(o.id_, H5I_INVALID_HID);
        }
        return *this;
    }
    ~Hid() { reset(); }

    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }
    void reset();

private:
    hid_t id_ = H5I_INVALID_HID;
};

// Throws ImageError(file, object, what + HDF5 message) when id < 0.
Hid check(hid_t id, const std::string& file, const std::string& object, const std::string& what);
void check(herr_t rc, const std::string& file, const std::string& object, const std::string& what);

// Full HDF5 path of an object, e.g. "/task/42/vmas".
std::string object_path(hid_t obj);
// Name of the file an object lives in.
std::string file_name(hid_t obj);

bool link_exists(hid_t loc, const std::string& name);

// Scalar attributes. Readers return nullopt when the attribute is absent and
// throw when it exists with an unexpected type.
void set_attr_u64(hid_t obj, const std::string& name, uint64_t value);
void set_attr_i64(hid_t obj, const std::string& name, int64_t value);
void set_attr_str(hid_t obj, const std::string& name, const std::string& value);
std::optional<uint64_t> get_attr_u64(hid_t obj, const std::string& name);
std::optional<int64_t> get_attr_i64(hid_t obj, const std::string& name);
std::optional<std::string> get_attr_str(hid_t obj, const std::string& name);

// The same, throwing an error naming the object when the attribute is absent.
uint64_t require_attr_u64(hid_t obj, const std::string& name);
int64_t require_attr_i64(hid_t obj, const std::string& name);
std::string require_attr_str(hid_t obj, const std::string& name);

Hid create_group(hid_t loc, const std::string& name);
Hid open_group(hid_t loc, const std::string& name);
Hid open_dataset(hid_t loc, const std::string& name);

}  // namespace ckpt::image::h5
