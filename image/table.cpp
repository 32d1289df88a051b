#include "image/table.hpp"

namespace ckpt::image {

void write_blob(hid_t loc, const std::string& name, std::span<const uint8_t> data, std::vector<uint64_t> dims) {
    const std::string file = h5::file_name(loc), where = h5::object_path(loc) + "/" + name;
    if (dims.empty()) dims = {data.size()};
    uint64_t product = 1;
    for (uint64_t d : dims) product *= d;
    if (dims.size() > 2 || product != data.size()) throw ImageError(file, where, "blob shape does not match its size");
    std::vector<hsize_t> hdims(dims.begin(), dims.end());
    h5::Hid space = h5::check(H5Screate_simple(static_cast<int>(hdims.size()), hdims.data(), nullptr), file, where,
                              "cannot create dataspace");
    h5::Hid dset = h5::check(H5Dcreate2(loc, name.c_str(), H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             file, where, "cannot create dataset");
    if (!data.empty())
        h5::check(H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), file, where,
                  "cannot write dataset");
    h5::set_attr_u64(dset, "xxh3_64", xxh3(data));
}

Blob read_blob(hid_t loc, const std::string& name, uint64_t max_bytes) {
    h5::Hid dset = h5::open_dataset(loc, name);
    const std::string file = h5::file_name(dset), where = h5::object_path(dset);
    h5::Hid type = h5::check(H5Dget_type(dset), file, where, "cannot read type");
    if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1) throw ImageError(file, where, "is not a byte array");
    h5::Hid space = h5::check(H5Dget_space(dset), file, where, "cannot read dataspace");
    int ndims = H5Sget_simple_extent_ndims(space);
    if (ndims < 1 || ndims > 2) throw ImageError(file, where, "byte array has " + std::to_string(ndims) + " dimensions");
    hsize_t hdims[2] = {0, 0};
    H5Sget_simple_extent_dims(space, hdims, nullptr);
    Blob blob;
    uint64_t total = 1;
    for (int i = 0; i < ndims; ++i) {
        if (hdims[i] > max_bytes || (hdims[i] != 0 && total > max_bytes / hdims[i]))
            throw ImageError(file, where, "byte array is implausibly large");
        blob.dims.push_back(hdims[i]);
        total *= hdims[i];
    }
    if (total > max_bytes) throw ImageError(file, where, "byte array is implausibly large");
    if (total > 0 && H5Dget_storage_size(dset) < total)
        throw ImageError(file, where, "claims " + std::to_string(total) + " bytes but stores less than that");
    const uint64_t expected = h5::require_attr_u64(dset, "xxh3_64");
    blob.data.resize(total);
    if (total > 0)
        h5::check(H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, blob.data.data()), file, where,
                  "cannot read dataset");
    if (xxh3(blob.data) != expected) throw ImageError(file, where, "checksum mismatch: data is damaged");
    return blob;
}

}  // namespace ckpt::image
