// libFuzzer target: structure-aware edits of a valid checkpoint.
//
// At start-up the target writes two small, deterministic checkpoints with the
// image library itself (one rank; page data uncompressed / zstd, 8 KiB
// chunks). Each input is a script of edits applied to a copy of one of them
// *through HDF5*, so that every file the reader sees is well-formed HDF5 and
// only the reader's own checks are under test (libhdf5 1.10.8 is not robust
// against damaged metadata; see fuzz_inspect_raw.cpp and run-fuzz.sh):
//
//   - bytes of a table row field, a string field, blob bytes, page bytes
//   - attribute values (integers, strings; also of unexpected types, and
//     arrays where a scalar is expected)
//   - deleted attributes, datasets and groups
//   - row counts (also huge ones: the dataset then has no storage and reads
//     back as fill values), dataset types, page chunks (bytes, stored size,
//     filter mask), the extent of the page dataset
//   - added datasets, hard/soft/external links, renamed and copied objects
//
// After the edits the target (unless the input says otherwise) recomputes
// the xxh3_64 checksums of the datasets it touched, the page_chunks rows of
// page datasets it touched and the manifest's file_bytes, so that damaged
// *values* get past the checksums and reach the semantic checks behind them.
// Then it runs ckpt::image::inspect() on the checkpoint directory or on the
// rank file. inspect() must return (never crash, hang or throw), must close
// every HDF5 identifier it opened (files, objects, datatypes, dataspaces,
// property lists), and must accept an unedited template.
//
// Input layout: byte 0 = flags (see kFlag*); then the rank file's edits: a
// count byte (mod kMaxOps + 1) and that many edits, each an opcode byte and
// its arguments; then the manifest's edits in the same form. Missing bytes
// read as zero.
// FUZZ_VERBOSE=1 prints each edit; FUZZ_KEEP_DIR=DIR copies the edited
// checkpoint to DIR (reproducers that need no harness: `ckpt-info DIR`).
#include "image/checkpoint_dir.hpp"
#include "image/checksum.hpp"
#include "image/compression.hpp"
#include "image/h5.hpp"
#include "image/inspect.hpp"
#include "fuzz_scratch.hpp"
#include "image/rank_image.hpp"
#include "image/schema.hpp"
#include "image/synthetic.hpp"
#include "image/table.hpp"

#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt::image;

namespace {

// ---- input ---------------------------------------------------------------------

class Input {
public:
    Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
    bool empty() const { return p_ >= end_; }
    uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return static_cast<uint32_t>(u16()) | (static_cast<uint32_t>(u16()) << 16); }
    uint64_t u64() { return static_cast<uint64_t>(u32()) | (static_cast<uint64_t>(u32()) << 32); }
    // A number that is usually small: one byte, or with the top bit set, 8.
    uint64_t count() {
        uint8_t b = u8();
        return (b & 0x80) ? u64() : (b & 0x7f);
    }
    std::string bytes(size_t n) {
        std::string s;
        while (n-- && p_ < end_) s += static_cast<char>(*p_++);
        return s;
    }
    std::string text(size_t max_len) { return bytes(u8() % (max_len + 1)); }

private:
    const uint8_t* p_;
    const uint8_t* end_;
};

constexpr uint8_t kFlagZstd = 1;            // template with zstd page data
constexpr uint8_t kModeShift = 1;           // bits 1-2: what to inspect
constexpr uint8_t kFlagNoChecksums = 8;     // keep the stale xxh3_64 attributes
constexpr uint8_t kFlagNoPageIndex = 16;    // keep stale page_chunks rows
constexpr uint8_t kFlagNoFileBytes = 32;    // keep the manifest's file_bytes
constexpr size_t kMaxOps = 12;
constexpr uint64_t kMaxHarnessRead = 8 << 20;  // the harness itself never reads more

// ---- scratch files ---------------------------------------------------------------

bool g_verbose = false;  // FUZZ_VERBOSE=1: print each edit
fs::path g_root;
fs::path g_work;  // the checkpoint the reader sees: manifest.h5 + rank-00000.h5
struct Template {
    std::string manifest, rank;
};
Template g_templates[2];

void remove_scratch() {
    std::error_code ec;
    if (!g_root.empty()) fs::remove_all(g_root, ec);
}

[[noreturn]] void die(const std::string& what) {
    fprintf(stderr, "fuzz_inspect_struct: %s\n", what.c_str());
    abort();
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) die("cannot read " + p.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& data) {
    FILE* f = fopen(p.c_str(), "wb");
    if (!f) die("cannot write " + p.string());
    if (!data.empty() && fwrite(data.data(), 1, data.size(), f) != data.size()) die("short write " + p.string());
    fclose(f);
}

size_t open_objects() { return static_cast<size_t>(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL)); }

// "group /task/1 (file ...), ..." for the objects still open: what a leak report names.
std::string describe_open_objects() {
    const ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n <= 0) return "none";
    std::vector<hid_t> ids(static_cast<size_t>(n));
    const ssize_t got = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, ids.size(), ids.data());
    std::string out;
    for (ssize_t i = 0; i < got; ++i) {
        char name[512] = "?";
        if (H5Iget_name(ids[i], name, sizeof name) < 0) snprintf(name, sizeof name, "?");
        const H5I_type_t type = H5Iget_type(ids[i]);
        const char* kind = type == H5I_FILE ? "file" : type == H5I_GROUP ? "group" : type == H5I_DATASET ? "dataset"
                         : type == H5I_DATATYPE ? "datatype" : type == H5I_ATTR ? "attribute" : "object";
        out += (out.empty() ? "" : ", ") + std::string(kind) + " " + name;
    }
    H5Eclear2(H5E_DEFAULT);
    return out;
}

// Open HDF5 identifiers of the kinds a reader creates and must close again:
// a leaked datatype, dataspace, property list or attribute id is not memory
// LeakSanitizer can see (the library still points at it), but it grows the
// process for every image read.
struct IdCounts {
    static constexpr H5I_type_t kTypes[] = {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST};
    static constexpr const char* kNames[] = {"file", "group", "datatype", "dataspace", "dataset", "attribute", "property list"};
    hsize_t n[std::size(kTypes)] = {};
    static IdCounts now() {
        IdCounts c;
        for (size_t i = 0; i < std::size(kTypes); ++i)
            if (H5Inmembers(kTypes[i], &c.n[i]) < 0) c.n[i] = 0;
        H5Eclear2(H5E_DEFAULT);
        return c;
    }
    // "" when equal, else which kinds differ.
    std::string diff(const IdCounts& before) const {
        std::string out;
        for (size_t i = 0; i < std::size(kTypes); ++i)
            if (n[i] != before.n[i])
                out += (out.empty() ? "" : ", ") + std::to_string(static_cast<long long>(n[i]) - static_cast<long long>(before.n[i])) +
                       " " + kNames[i];
        return out;
    }
};
IdCounts g_baseline;

// ---- templates --------------------------------------------------------------------

Template make_template(const fs::path& dir, Compression compression) {
    CheckpointDir cd(dir.string());
    PendingCheckpoint pending = cd.begin();
    SyntheticSpec spec{2, 2, 10 * kPageSize};
    auto memory = synthetic_memory(spec.bytes_per_task, 0.5, 1);
    RankHeader header;
    header.rank = 0;
    header.job_id = "fuzz-job";
    header.node = "fuzz-node";
    header.image_id = "0123456789abcdef0123456789abcdef";
    header.created_unix_ns = 1700000000000000000;
    PageOptions options;
    options.compression = compression;
    options.threads = 1;
    options.chunk_bytes = 2 * kPageSize;
    ManifestRankRecord row;
    {
        RankWriter writer(pending.rank_path(0), header, options);
        write_synthetic_rank(writer, spec, memory);
        RankSummary s = writer.finish(1000000);
        row.rank = 0;
        row.ntasks = s.ntasks;
        row.nthreads = s.nthreads;
        row.nvmas = s.nvmas;
        row.memory_bytes = s.memory_bytes;
        row.stored_bytes = s.stored_bytes;
        row.on_disk_bytes = s.on_disk_bytes;
        row.dump_ns = 1000000;
        row.node = header.node;
        row.image_id = header.image_id;
    }
    const fs::path ckpt = pending.commit(header.job_id, 2000000, {row});
    InspectReport report = inspect(ckpt.string(), true, 1);
    if (!report.error.empty()) die("the template checkpoint does not verify: " + report.error);
    return {slurp(ckpt / "manifest.h5"), slurp(ckpt / rank_file_name(0))};
}

// ---- HDF5 helpers -----------------------------------------------------------------

struct Object {
    std::string path;
    H5O_type_t type;
};

herr_t visit_cb(hid_t, const char* name, const H5O_info_t* info, void* data) {
    auto* out = static_cast<std::vector<Object>*>(data);
    std::string path = std::string(name) == "." ? "/" : "/" + std::string(name);
    out->push_back({path, info->type});
    return 0;
}

std::vector<Object> objects(hid_t file) {
    std::vector<Object> out;
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &out, H5O_INFO_BASIC) < 0) H5Eclear2(H5E_DEFAULT);
    return out;
}

std::vector<Object> of_type(const std::vector<Object>& all, H5O_type_t type) {
    std::vector<Object> out;
    for (const auto& o : all)
        if (o.type == type) out.push_back(o);
    return out;
}

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::string join(const std::string& group, const std::string& name) { return (group == "/" ? "" : group) + "/" + name; }

// Through hard links only, as the reader does: libhdf5 cannot close a group
// reached through an external link back into the same file.
bool hard_links_only(hid_t file, const std::string& path) {
    for (size_t end = path.find('/', 1); ; end = path.find('/', end + 1)) {
        const std::string prefix = path.substr(0, end);
        H5L_info_t info{};
        if (prefix.size() > 1 && (H5Lget_info(file, prefix.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5L_TYPE_HARD)) {
            H5Eclear2(H5E_DEFAULT);
            return false;
        }
        if (end == std::string::npos) return true;
    }
}

h5::Hid open_obj(hid_t file, const std::string& path) {
    if (!hard_links_only(file, path)) return h5::Hid();
    hid_t id = H5Oopen(file, path.c_str(), H5P_DEFAULT);
    if (id < 0) H5Eclear2(H5E_DEFAULT);
    return h5::Hid(id);
}

std::vector<std::string> attr_names(hid_t obj) {
    std::vector<std::string> names;
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) < 0) {
        H5Eclear2(H5E_DEFAULT);
        return names;
    }
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
        char buf[256] = {};
        if (H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf, sizeof buf, H5P_DEFAULT) >= 0) names.emplace_back(buf);
    }
    H5Eclear2(H5E_DEFAULT);
    return names;
}

struct DatasetShape {
    h5::Hid type, space, dcpl;
    std::vector<hsize_t> dims;
    uint64_t npoints = 0;
    size_t elem = 0;
    bool chunked = false;
};

bool shape_of(hid_t dset, DatasetShape& s) {
    s.type = h5::Hid(H5Dget_type(dset));
    s.space = h5::Hid(H5Dget_space(dset));
    s.dcpl = h5::Hid(H5Dget_create_plist(dset));
    if (!s.type.valid() || !s.space.valid() || !s.dcpl.valid()) return false;
    int nd = H5Sget_simple_extent_ndims(s.space);
    if (nd < 0 || nd > 8) return false;
    s.dims.assign(static_cast<size_t>(nd), 0);
    H5Sget_simple_extent_dims(s.space, s.dims.data(), nullptr);
    s.npoints = 1;
    for (hsize_t d : s.dims) s.npoints = (d != 0 && s.npoints > UINT64_MAX / d) ? UINT64_MAX : s.npoints * d;
    if (nd == 0) s.npoints = H5Sget_simple_extent_type(s.space) == H5S_NULL ? 0 : 1;
    s.elem = H5Tget_size(s.type);
    s.chunked = H5Pget_layout(s.dcpl) == H5D_CHUNKED;
    return s.elem > 0;
}

// The whole dataset in memory, in the native form of its own type.
struct Contents {
    h5::Hid mem_type, space;
    std::vector<uint8_t> data;
    bool has_vlen = false;
    ~Contents() {
        if (has_vlen && !data.empty()) H5Dvlen_reclaim(mem_type, space, H5P_DEFAULT, data.data());
    }
};

bool read_all(hid_t dset, const DatasetShape& s, Contents& c) {
    c.mem_type = h5::Hid(H5Tget_native_type(s.type, H5T_DIR_ASCEND));
    if (!c.mem_type.valid() || s.npoints == 0) return false;
    const size_t size = H5Tget_size(c.mem_type);
    if (s.npoints > kMaxHarnessRead / size) return false;
    c.space = h5::Hid(H5Scopy(s.space));
    c.data.assign(s.npoints * size, 0);
    if (H5Dread(dset, c.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data.data()) < 0) {
        c.data.clear();
        return false;
    }
    c.has_vlen = H5Tdetect_class(c.mem_type, H5T_VLEN) > 0 || (H5Tget_class(c.mem_type) == H5T_STRING && H5Tis_variable_str(c.mem_type) > 0);
    if (H5Tget_class(c.mem_type) == H5T_COMPOUND) {
        for (int i = 0; i < H5Tget_nmembers(c.mem_type); ++i) {
            h5::Hid m(H5Tget_member_type(c.mem_type, static_cast<unsigned>(i)));
            if (H5Tget_class(m) == H5T_STRING && H5Tis_variable_str(m) > 0) c.has_vlen = true;
        }
    }
    return true;
}

bool copy_attrs(hid_t from, hid_t to) {
    for (const auto& name : attr_names(from)) {
        h5::Hid a(H5Aopen(from, name.c_str(), H5P_DEFAULT));
        if (!a.valid()) continue;
        h5::Hid type(H5Aget_type(a)), space(H5Aget_space(a));
        const hssize_t n = H5Sget_simple_extent_npoints(space);
        const size_t size = H5Tget_size(type);
        if (n < 0 || size == 0 || static_cast<uint64_t>(n) * size > (1 << 20)) continue;
        std::vector<uint8_t> buf(static_cast<size_t>(n) * size + 1);
        if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) continue;  // none written by the library
        if (H5Aread(a, type, buf.data()) < 0) continue;
        h5::Hid b(H5Acreate2(to, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
        if (b.valid()) H5Awrite(b, type, buf.data());
    }
    H5Eclear2(H5E_DEFAULT);
    return true;
}

// Replaces the dataset at path with a new one of the given type and dims
// (contiguous, no storage until written), keeping its attributes. Writes
// `rows` leading elements of `data` (in mem_type) when given.
bool recreate(hid_t file, const std::string& path, hid_t type, const std::vector<hsize_t>& dims, hid_t mem_type = -1,
              const void* data = nullptr, hsize_t rows = 0) {
    h5::Hid old = open_obj(file, path);
    if (!old.valid()) return false;
    h5::Hid space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    if (!space.valid()) return false;
    if (H5Ldelete(file, path.c_str(), H5P_DEFAULT) < 0) return false;
    h5::Hid dset(H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!dset.valid()) return false;
    copy_attrs(old, dset);
    if (data && rows > 0 && !dims.empty()) {
        std::vector<hsize_t> start(dims.size(), 0), count = dims;
        count[0] = std::min<hsize_t>(rows, dims[0]);
        h5::Hid file_space(H5Scopy(space));
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
        h5::Hid mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
        H5Dwrite(dset, mem_type, mem_space, file_space, H5P_DEFAULT, data);
    }
    return true;
}

// ---- checksum repair --------------------------------------------------------------

// Reads a table as Rec rows without checking anything (the harness's own
// reader: it must work on the tables it is about to repair).
template <class Rec>
bool read_rows(hid_t dset, std::vector<Rec>& rows) {
    DatasetShape s;
    if (!shape_of(dset, s) || s.dims.size() != 1 || s.npoints > kMaxHarnessRead / 64) return false;
    const size_t row_size = detail::packed_row_size<Rec>();
    std::vector<uint8_t> packed(row_size * s.npoints);
    rows.assign(s.npoints, Rec{});
    h5::Hid mem_type = detail::compound_type<Rec>(false);
    if (s.npoints == 0) return true;
    if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()) < 0) return false;
    for (size_t i = 0; i < rows.size(); ++i) {
        size_t offset = 0;
        detail::for_each_field<Rec>([&](const auto& f) {
            using Traits = detail::FieldTraits<decltype(detail::field_member_type(f))>;
            Traits::unpack(packed.data() + i * row_size + offset, rows[i].*(f.member));
            offset += Traits::packed_size;
        });
    }
    if (detail::has_strings<Rec>()) H5Dvlen_reclaim(mem_type, s.space, H5P_DEFAULT, packed.data());
    return true;
}

// Writes rows over an existing table of the same row count.
template <class Rec>
bool write_rows(hid_t dset, const std::vector<Rec>& rows) {
    const std::vector<uint8_t> packed = pack_rows(rows);
    h5::Hid mem_type = detail::compound_type<Rec>(false);
    return rows.empty() || H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()) >= 0;
}

template <class Rec>
bool fix_table(hid_t dset) {
    if (H5Aexists(dset, "xxh3_64") <= 0) return false;
    std::vector<Rec> rows;
    if (!read_rows(dset, rows)) return false;
    h5::set_attr_u64(dset, "xxh3_64", table_checksum(rows));
    return true;
}

bool fix_blob(hid_t dset) {
    if (H5Aexists(dset, "xxh3_64") <= 0) return false;
    DatasetShape s;
    if (!shape_of(dset, s) || s.chunked || H5Tget_class(s.type) != H5T_INTEGER || s.elem != 1 || s.npoints > kMaxHarnessRead)
        return false;
    std::vector<uint8_t> data(s.npoints);
    if (s.npoints > 0 && H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) < 0) return false;
    h5::set_attr_u64(dset, "xxh3_64", xxh3(data));
    return true;
}

using Fixer = bool (*)(hid_t);
const std::map<std::string, Fixer>& table_fixers() {
    static const std::map<std::string, Fixer> fixers = {
        {TableSchema<TaskRecord>::name, fix_table<TaskRecord>},
        {TableSchema<ProcessRecord>::name, fix_table<ProcessRecord>},
        {TableSchema<VmaRecord>::name, fix_table<VmaRecord>},
        {TableSchema<PageRunRecord>::name, fix_table<PageRunRecord>},
        {TableSchema<PageChunkRecord>::name, fix_table<PageChunkRecord>},
        {TableSchema<ThreadRecord>::name, fix_table<ThreadRecord>},
        {TableSchema<FdRecord>::name, fix_table<FdRecord>},
        {TableSchema<SigactionRecord>::name, fix_table<SigactionRecord>},
        {TableSchema<PendingSignalRecord>::name, fix_table<PendingSignalRecord>},
        {TableSchema<TimerRecord>::name, fix_table<TimerRecord>},
        {TableSchema<RlimitRecord>::name, fix_table<RlimitRecord>},
        {TableSchema<CredsRecord>::name, fix_table<CredsRecord>},
        {TableSchema<FileRecord>::name, fix_table<FileRecord>},
        {TableSchema<PipeRecord>::name, fix_table<PipeRecord>},
        {TableSchema<ShmemRecord>::name, fix_table<ShmemRecord>},
        {TableSchema<MpiObjectRecord>::name, fix_table<MpiObjectRecord>},
        {TableSchema<MpiMessageRecord>::name, fix_table<MpiMessageRecord>},
        {TableSchema<MpiRequestRecord>::name, fix_table<MpiRequestRecord>},
        {TableSchema<ManifestRankRecord>::name, fix_table<ManifestRankRecord>},
    };
    return fixers;
}

void fix_checksum(hid_t file, const std::string& path) {
    h5::Hid obj = open_obj(file, path);
    if (!obj.valid() || H5Iget_type(obj) != H5I_DATASET) return;
    auto it = table_fixers().find(base_of(path));
    if (it == table_fixers().end() || !it->second(obj)) fix_blob(obj);
    H5Eclear2(H5E_DEFAULT);
}

// Rewrites the page_chunks rows of the page dataset in group to match its
// chunks as stored (size, and hash of the decompressed chunk).
void fix_page_chunks(hid_t file, const std::string& group) {
    h5::Hid pages = open_obj(file, join(group, "pages"));
    h5::Hid table = open_obj(file, join(group, "page_chunks"));
    if (!pages.valid() || !table.valid() || H5Iget_type(pages) != H5I_DATASET || H5Iget_type(table) != H5I_DATASET) return;
    DatasetShape ps, ts;
    if (!shape_of(pages, ps) || !ps.chunked || !shape_of(table, ts) || ts.dims.size() != 1 || ts.npoints > 4096) return;
    auto chunk_bytes = h5::get_attr_u64(pages, "chunk_bytes");
    std::optional<std::string> compression;
    try {
        compression = h5::get_attr_str(pages, "compression");
    } catch (const ImageError&) {
    }
    if (!chunk_bytes || *chunk_bytes == 0 || *chunk_bytes > (1 << 20)) return;
    hsize_t layout_chunk[1] = {0};
    if (H5Pget_chunk(ps.dcpl, 1, layout_chunk) != 1 || layout_chunk[0] != *chunk_bytes) return;
    std::vector<PageChunkRecord> rows;
    if (!read_rows(table, rows)) return;
    for (size_t i = 0; i < rows.size(); ++i) {
        hsize_t offset[1] = {i * *chunk_bytes};
        hsize_t stored = 0;
        if (H5Dget_chunk_storage_size(pages, offset, &stored) < 0 || stored == 0 || stored > 4 * *chunk_bytes) continue;
        std::vector<uint8_t> raw(stored);
        uint32_t mask = 0;
        if (H5Dread_chunk(pages, H5P_DEFAULT, offset, &mask, raw.data()) < 0) continue;
        std::vector<uint8_t> plain(*chunk_bytes);
        if (compression == "zstd" && !(mask & 1)) {
            if (!zstd_decompress(raw, plain)) plain = raw;
        } else {
            plain = raw;
        }
        rows[i] = {xxh3(plain), stored};
    }
    write_rows(table, rows);
    H5Eclear2(H5E_DEFAULT);
}

// ---- edits ------------------------------------------------------------------------

const char* const kIntAttrs[] = {"format_major", "format_minor", "complete", "rank", "created_unix_ns", "dump_ns",
                                 "bytes", "chunk_bytes", "stored_bytes", "zstd_level", "xxh3_64", "sequence",
                                 "nranks", "nnodes", "duration_ns"};
const char* const kStrAttrs[] = {"format_name", "job_id", "node", "image_id", "compression", "status"};
const char* const kNames[] = {"tasks", "process", "vmas", "page_index", "page_chunks", "pages", "threads", "xsave",
                              "fds", "sigactions", "pending_signals", "timers", "rlimits", "creds", "auxv",
                              "cpu_affinity", "files", "pipes", "pipe_data", "shmem", "shmem_1", "shmem_2", "payload",
                              "creation_log", "drained_messages", "pending_requests", "rank_table", "tree", "task",
                              "shared", "mpi", "ranks", "1", "101", "201", "0", "extra"};
const char* const kStringValues[] = {"ckpt-rank-image", "ckpt-manifest", "zstd", "none", "committed", "fuzz-job",
                                     "0123456789abcdef0123456789abcdef", "fuzz-node", "", "rank-00000.h5",
                                     "../rank-00000.h5", "/etc/passwd"};

template <class T, size_t N>
const T& pick(const T (&arr)[N], uint64_t v) {
    return arr[v % N];
}

class Editor {
public:
    Editor(hid_t file, Input& in, std::set<std::string>& dirty, std::set<std::string>& dirty_pages)
        : file_(file), in_(in), dirty_(dirty), dirty_pages_(dirty_pages) {}

    // Applies one edit; true when the file changed.
    bool apply(uint8_t op) {
        all_ = objects(file_);
        if (all_.empty()) return false;
        bool changed = false;
        note_.clear();
        switch (op % 13) {
            case 0: changed = write_field(); break;
            case 1: changed = set_int_attr(); break;
            case 2: changed = set_str_attr(); break;
            case 3: changed = delete_attr(); break;
            case 4: changed = delete_link(); break;
            case 5: changed = resize(); break;
            case 6: changed = edit_chunk(); break;
            case 7: changed = set_extent(); break;
            case 8: changed = retype(); break;
            case 9: changed = add_dataset(); break;
            case 10: changed = add_link(); break;
            case 11: changed = move_link(); break;
            case 12: changed = copy_object(); break;
        }
        H5Eclear2(H5E_DEFAULT);
        if (g_verbose) {
            static const char* names[] = {"write_field", "set_int_attr", "set_str_attr", "delete_attr", "delete_link",
                                          "resize", "edit_chunk", "set_extent", "retype", "add_dataset",
                                          "add_link", "move_link", "copy_object"};
            fprintf(stderr, "edit %s %s: %s\n", names[op % 13], note_.c_str(), changed ? "done" : "skipped");
        }
        return changed;
    }

private:
    std::string note_;
    const Object* any_object() { return &all_[in_.u16() % all_.size()]; }
    const Object* pick_of(H5O_type_t type) {
        auto list = of_type(all_, type);
        if (list.empty()) return nullptr;
        picked_ = list[in_.u16() % list.size()];
        return &picked_;
    }
    void touched(const std::string& path) {
        dirty_.insert(path);
        if (base_of(path) == "pages") dirty_pages_.insert(parent_of(path));
    }

    bool write_field() {
        const Object* o = pick_of(H5O_TYPE_DATASET);
        if (!o) return false;
        h5::Hid d = open_obj(file_, o->path);
        DatasetShape s;
        Contents c;
        // Not the chunked page data: reading it would run the zstd filter on
        // chunks edit_chunk damaged (allocations of up to 4 GiB in the
        // harness); edit_chunk edits chunks instead.
        if (!d.valid() || !shape_of(d, s) || s.chunked || !read_all(d, s, c)) return false;
        const size_t size = H5Tget_size(c.mem_type);
        const uint64_t index = in_.u32() % s.npoints;
        uint8_t* elem = c.data.data() + index * size;
        note_ = o->path + " element " + std::to_string(index);
        std::string replacement;  // keeps a replaced string alive until the write
        char** string_slot = nullptr;
        char* original = nullptr;
        if (H5Tget_class(c.mem_type) == H5T_COMPOUND) {
            const int n = H5Tget_nmembers(c.mem_type);
            if (n <= 0) return false;
            const unsigned m = in_.u8() % static_cast<unsigned>(n);
            h5::Hid mt(H5Tget_member_type(c.mem_type, m));
            const size_t off = H5Tget_member_offset(c.mem_type, m), msize = H5Tget_size(mt);
            if (char* mname = H5Tget_member_name(c.mem_type, m)) {
                note_ += std::string(" field ") + mname;
                H5free_memory(mname);
            }
            if (H5Tget_class(mt) == H5T_STRING && H5Tis_variable_str(mt) > 0) {
                const uint8_t form = in_.u8();
                replacement = form & 1 ? std::string(pick(kStringValues, form >> 1)) : in_.text(255);
                if (form == 0xff) replacement = std::string(kMaxStringBytes + 1 + in_.u8(), 'x');
                string_slot = reinterpret_cast<char**>(elem + off);
                original = *string_slot;
                *string_slot = replacement.data();
            } else {
                poke(elem + off, msize);
            }
        } else {
            poke(c.data.data(), c.data.size());
        }
        const bool ok = H5Dwrite(d, c.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data.data()) >= 0;
        if (string_slot) *string_slot = original;
        if (ok) touched(o->path);
        return ok;
    }

    // Overwrites 1..8 bytes somewhere in [p, p+n) with input bytes.
    void poke(uint8_t* p, size_t n) {
        if (n == 0) return;
        const size_t at = in_.u32() % n;
        const size_t len = std::min<size_t>(1 + in_.u8() % 8, n - at);
        for (size_t i = 0; i < len; ++i) p[at + i] = in_.u8();
    }

    std::string attr_name(hid_t obj, const char* const* known, size_t nknown) {
        auto names = attr_names(obj);
        const size_t k = in_.u8() % (names.size() + nknown);
        return k < names.size() ? names[k] : known[k - names.size()];
    }

    bool set_int_attr() {
        const Object* o = any_object();
        h5::Hid obj = open_obj(file_, o->path);
        if (!obj.valid()) return false;
        const std::string name = attr_name(obj, kIntAttrs, std::size(kIntAttrs));
        const uint8_t form = in_.u8();
        uint64_t value = in_.u64();
        if (form & 0x10) value = form & 0x20 ? value % 4 : value % 0x100000;  // small values are interesting
        if (form & 0x40) value = 0x2000 + 0x1000 * (value % 16);                // page-ish
        hid_t type = H5T_STD_U64LE, mem = H5T_NATIVE_UINT64;
        std::vector<hsize_t> dims;
        switch (form % 8) {
            case 5: type = H5T_STD_I64LE; mem = H5T_NATIVE_INT64; break;
            case 6: type = H5T_STD_U8LE; mem = H5T_NATIVE_UINT64; break;
            case 7: type = H5T_IEEE_F64LE; mem = H5T_NATIVE_UINT64; break;
            default: break;
        }
        if (form & 0x80) dims = {2};
        if (H5Aexists(obj, name.c_str()) > 0 && H5Adelete(obj, name.c_str()) < 0) return false;
        h5::Hid space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims.data(), nullptr));
        h5::Hid attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
        if (!attr.valid()) return false;
        uint64_t values[2] = {value, value};
        note_ = o->path + " @" + name + " = " + std::to_string(value) + " form " + std::to_string(form);
        H5Awrite(attr, mem, values);
        if (name == "xxh3_64" && o->type == H5O_TYPE_DATASET) no_fix_.insert(o->path);
        return true;
    }

    bool set_str_attr() {
        const Object* o = any_object();
        h5::Hid obj = open_obj(file_, o->path);
        if (!obj.valid()) return false;
        const std::string name = attr_name(obj, kStrAttrs, std::size(kStrAttrs));
        const uint8_t form = in_.u8();
        std::string value = form & 1 ? std::string(pick(kStringValues, form >> 1)) : in_.text(255);
        if ((form & 0x0e) == 0x0e) value = std::string(65536 + (form >> 4) - 8, 'n');  // around kMaxAttrString
        if (H5Aexists(obj, name.c_str()) > 0 && H5Adelete(obj, name.c_str()) < 0) return false;
        h5::Hid type(H5Tcopy(H5T_C_S1));
        const bool variable = (form & 0x30) == 0x30;
        if (variable) {
            H5Tset_size(type, H5T_VARIABLE);
        } else {
            H5Tset_size(type, std::max<size_t>(value.size(), 1));
            H5Tset_strpad(type, form & 0x40 ? H5T_STR_NULLPAD : H5T_STR_NULLTERM);
        }
        // Mostly scalar; with the form's top bit an array of 2..4 strings.
        const hsize_t count = form & 0x80 ? 2 + (form >> 5) % 3 : 1;
        h5::Hid space(count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr));
        note_ = o->path + " @" + name + " = '" + value.substr(0, 64) + "' (" + std::to_string(value.size()) + " bytes, form " +
                std::to_string(form) + ", " + std::to_string(count) + " element(s))";
        h5::Hid attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
        if (!attr.valid()) return false;
        if (variable) {
            std::vector<const char*> p(count, value.c_str());
            H5Awrite(attr, type, p.data());
        } else {
            value.resize(std::max<size_t>(value.size(), 1), '\0');
            std::string all;
            for (hsize_t i = 0; i < count; ++i) all += value;
            H5Awrite(attr, type, all.data());
        }
        return true;
    }

    bool delete_attr() {
        const Object* o = any_object();
        h5::Hid obj = open_obj(file_, o->path);
        if (!obj.valid()) return false;
        auto names = attr_names(obj);
        if (names.empty()) return false;
        const std::string name = names[in_.u8() % names.size()];
        note_ = o->path + " @" + name;
        return H5Adelete(obj, name.c_str()) >= 0;
    }

    bool delete_link() {
        const Object* o = any_object();
        note_ = o->path;
        if (o->path == "/") return false;
        return H5Ldelete(file_, o->path.c_str(), H5P_DEFAULT) >= 0;
    }

    bool resize() {
        const Object* o = pick_of(H5O_TYPE_DATASET);
        if (!o) return false;
        const std::string path = o->path;
        h5::Hid d = open_obj(file_, path);
        DatasetShape s;
        if (!d.valid() || !shape_of(d, s) || s.chunked || s.dims.empty()) return false;
        Contents c;
        const bool have = read_all(d, s, c);
        std::vector<hsize_t> dims = s.dims;
        const uint8_t form = in_.u8();
        if (form & 0x80) {
            dims[0] = in_.u64() % (uint64_t{1} << 40);  // no storage: reads back as fill values
        } else {
            dims[0] = form & 0x3f;
        }
        if (dims.size() == 2 && (form & 0x40)) dims[1] = in_.count();
        note_ = path + " to " + std::to_string(dims[0]) + (dims.size() == 2 ? " x " + std::to_string(dims[1]) : "") +
                (form & 0x80 ? " rows (no storage)" : " rows");
        if (form & 0x80 || !have) return recreate(file_, path, s.type, dims) && (touched(path), true);
        const hsize_t rows = std::min<hsize_t>(s.dims[0], dims[0]);
        const bool same_row = dims.size() < 2 || dims[1] == s.dims[1];
        h5::Hid mem(H5Tcopy(c.mem_type));
        d = h5::Hid();
        const bool ok = recreate(file_, path, s.type, dims, mem, same_row ? c.data.data() : nullptr, same_row ? rows : 0);
        if (ok) touched(path);
        return ok;
    }

    bool edit_chunk() {
        auto datasets = of_type(all_, H5O_TYPE_DATASET);
        std::vector<Object> chunked;
        for (const auto& o : datasets)
            if (base_of(o.path) == "pages") chunked.push_back(o);
        if (chunked.empty()) return false;
        const Object o = chunked[in_.u8() % chunked.size()];
        h5::Hid d = open_obj(file_, o.path);
        DatasetShape s;
        if (!d.valid() || !shape_of(d, s) || !s.chunked || s.dims.size() != 1) return false;
        hsize_t chunk[1] = {0};
        if (H5Pget_chunk(s.dcpl, 1, chunk) != 1 || chunk[0] == 0) return false;
        const uint64_t nchunks = (s.dims[0] + chunk[0] - 1) / chunk[0];
        hsize_t offset[1] = {(in_.u8() % (nchunks + 1)) * chunk[0]};
        const uint8_t mode = in_.u8();
        hsize_t stored = 0;
        std::vector<uint8_t> raw;
        uint32_t mask = 0;
        if (H5Dget_chunk_storage_size(d, offset, &stored) >= 0 && stored > 0 && stored <= 4 * chunk[0]) {
            raw.resize(stored);
            if (H5Dread_chunk(d, H5P_DEFAULT, offset, &mask, raw.data()) < 0) raw.clear();
        }
        H5Eclear2(H5E_DEFAULT);
        switch (mode % 4) {
            case 0: poke(raw.data(), raw.size()); break;
            case 1: raw.resize(1 + in_.u32() % (2 * chunk[0]), static_cast<uint8_t>(in_.u8())); break;
            case 2: mask ^= 1 + (mode >> 7); break;
            case 3: raw = [&] {
                auto b = in_.text(255);
                return std::vector<uint8_t>(b.begin(), b.end());
            }(); break;
        }
        note_ = o.path + " chunk at " + std::to_string(offset[0]) + " mode " + std::to_string(mode % 4) + ", " +
                std::to_string(raw.size()) + " bytes, mask " + std::to_string(mask);
        if (raw.empty()) return false;
        if (H5Dwrite_chunk(d, H5P_DEFAULT, mask, offset, raw.size(), raw.data()) < 0) return false;
        touched(o.path);
        return true;
    }

    bool set_extent() {
        const Object* o = pick_of(H5O_TYPE_DATASET);
        if (!o) return false;
        h5::Hid d = open_obj(file_, o->path);
        DatasetShape s;
        if (!d.valid() || !shape_of(d, s) || !s.chunked || s.dims.size() != 1) return false;
        const uint8_t form = in_.u8();
        hsize_t dims[1] = {form & 1 ? in_.u64() % (uint64_t{1} << 40) : s.dims[0] + kPageSize * (static_cast<int8_t>(in_.u8()))};
        note_ = o->path + " to " + std::to_string(dims[0]);
        if (H5Dset_extent(d, dims) < 0) return false;
        touched(o->path);
        return true;
    }

    h5::Hid altered_type(hid_t type, uint8_t form, uint8_t member) {
        if (H5Tget_class(type) == H5T_COMPOUND && (form % 4) != 3) {
            const int n = H5Tget_nmembers(type);
            if (n <= 0) return {};
            const unsigned drop = member % static_cast<unsigned>(n);
            std::vector<std::pair<std::string, h5::Hid>> members;
            for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
                char* name = H5Tget_member_name(type, i);
                h5::Hid mt(H5Tget_member_type(type, i));
                std::string sname = name ? name : "?";
                H5free_memory(name);
                if (form % 4 == 0 && i == drop) continue;  // a missing field
                if (form % 4 == 1 && i == drop) {          // a field of another type
                    static const hid_t kinds[] = {H5T_STD_I8LE, H5T_STD_U16BE, H5T_IEEE_F64LE, H5T_STD_U64LE, H5T_STD_I32BE};
                    if ((form >> 2) % 6 == 5) {
                        h5::Hid str(H5Tcopy(H5T_C_S1));
                        H5Tset_size(str, H5T_VARIABLE);
                        mt = std::move(str);
                    } else {
                        mt = h5::Hid(H5Tcopy(kinds[(form >> 2) % 5]));
                    }
                }
                members.emplace_back(sname, std::move(mt));
            }
            if (form % 4 == 2) members.emplace_back("extra_field", h5::Hid(H5Tcopy(H5T_STD_U64LE)));
            size_t size = 0;
            for (auto& m : members) size += H5Tget_size(m.second);
            h5::Hid t(H5Tcreate(H5T_COMPOUND, std::max<size_t>(size, 1)));
            size_t off = 0;
            for (auto& m : members) {
                H5Tinsert(t, m.first.c_str(), off, m.second);
                off += H5Tget_size(m.second);
            }
            return t;
        }
        static const hid_t kinds[] = {H5T_STD_U8LE, H5T_STD_U16LE, H5T_STD_I8LE, H5T_IEEE_F32LE, H5T_STD_U64BE};
        if ((form >> 2) % 6 == 5) {
            h5::Hid str(H5Tcopy(H5T_C_S1));
            H5Tset_size(str, 1 + member % 16);
            return str;
        }
        return h5::Hid(H5Tcopy(kinds[(form >> 2) % 5]));
    }

    bool retype() {
        const Object* o = pick_of(H5O_TYPE_DATASET);
        if (!o) return false;
        const std::string path = o->path;
        h5::Hid d = open_obj(file_, path);
        DatasetShape s;
        if (!d.valid() || !shape_of(d, s) || s.chunked) return false;
        const uint8_t form = in_.u8(), member = in_.u8();
        h5::Hid t = altered_type(s.type, form, member);
        note_ = path + " form " + std::to_string(form) + " member " + std::to_string(member);
        if (!t.valid()) return false;
        d = h5::Hid();
        const bool ok = recreate(file_, path, t, s.dims);
        if (ok) touched(path);
        return ok;
    }

    bool add_dataset() {
        const Object* g = pick_of(H5O_TYPE_GROUP);
        if (!g) return false;
        const uint8_t form = in_.u8();
        const std::string name = form & 1 ? in_.text(12) : pick(kNames, in_.u8());
        if (name.empty() || name.find_first_of(std::string("/\0", 2)) != std::string::npos || name == ".") return false;
        const std::string path = join(g->path, name);
        note_ = path + (form & 2 ? " (group)" : " (blob)");
        if (h5::link_exists(file_, path) && H5Ldelete(file_, path.c_str(), H5P_DEFAULT) < 0) return false;
        h5::Hid group = open_obj(file_, g->path);
        if (!group.valid()) return false;
        try {
            if (form & 2) {
                h5::create_group(group, name);
            } else {
                std::string data = in_.text(64);
                write_blob(group, name, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
            }
        } catch (const ImageError&) {
            return false;
        }
        return true;
    }

    bool add_link() {
        const Object* target = any_object();
        const std::string target_path = target->path;
        const Object* g = pick_of(H5O_TYPE_GROUP);
        if (!g) return false;
        const uint8_t form = in_.u8();
        const std::string name = pick(kNames, in_.u8());
        const std::string path = join(g->path, name);
        if (h5::link_exists(file_, path) && H5Ldelete(file_, path.c_str(), H5P_DEFAULT) < 0) return false;
        herr_t rc = -1;
        note_ = path + " -> " + target_path + " kind " + std::to_string(form % 4);
        switch (form % 4) {
            case 0: rc = H5Lcreate_hard(file_, target_path.c_str(), file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
            case 1: rc = H5Lcreate_soft(target_path.c_str(), file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
            case 2: rc = H5Lcreate_soft(join(target_path, "missing").c_str(), file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT); break;
            case 3: {
                static const char* files[] = {"rank-00000.h5", "manifest.h5", "missing.h5", "/dev/null"};
                rc = H5Lcreate_external(files[(form >> 2) % 4], target_path.c_str(), file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT);
                break;
            }
        }
        return rc >= 0;
    }

    bool move_link() {
        const Object* from = any_object();
        if (from->path == "/") return false;
        const std::string from_path = from->path;
        const Object* g = pick_of(H5O_TYPE_GROUP);
        if (!g) return false;
        const std::string to = join(g->path, pick(kNames, in_.u8()));
        if (to == from_path || to.starts_with(from_path + "/")) return false;
        if (h5::link_exists(file_, to) && H5Ldelete(file_, to.c_str(), H5P_DEFAULT) < 0) return false;
        note_ = from_path + " -> " + to;
        if (H5Lmove(file_, from_path.c_str(), file_, to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) return false;
        touched(to);
        return true;
    }

    // libhdf5 1.10.8 calls a null function pointer in H5Ocopy when the object
    // carries a variable-length string attribute in dense storage
    // (H5A__dense_post_copy_file_all -> H5A__attr_copy_file -> H5T__conv_vlen):
    // such objects are not copied.
    static herr_t vlen_attr_cb(hid_t loc, const char* name, const H5A_info_t*, void* data) {
        h5::Hid a(H5Aopen(loc, name, H5P_DEFAULT));
        h5::Hid t(a.valid() ? H5Aget_type(a) : H5I_INVALID_HID);
        if (t.valid() && (H5Tdetect_class(t, H5T_VLEN) > 0 || (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0)))
            *static_cast<bool*>(data) = true;
        return 0;
    }
    static herr_t vlen_visit_cb(hid_t obj, const char* name, const H5O_info_t*, void* data) {
        h5::Hid o(H5Oopen(obj, name, H5P_DEFAULT));
        if (o.valid()) H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, nullptr, vlen_attr_cb, data);
        return 0;
    }
    bool has_vlen_attrs(const std::string& path) {
        h5::Hid obj = open_obj(file_, path);
        bool found = !obj.valid();
        if (obj.valid()) H5Ovisit2(obj, H5_INDEX_NAME, H5_ITER_INC, vlen_visit_cb, &found, H5O_INFO_BASIC);
        H5Eclear2(H5E_DEFAULT);
        return found;
    }

    bool copy_object() {
        const Object* from = any_object();
        if (from->path == "/") return false;
        const std::string from_path = from->path;
        if (has_vlen_attrs(from_path)) return false;
        const Object* g = pick_of(H5O_TYPE_GROUP);
        if (!g) return false;
        const std::string to = join(g->path, pick(kNames, in_.u8()));
        if (to == from_path || to.starts_with(from_path + "/")) return false;
        if (h5::link_exists(file_, to) && H5Ldelete(file_, to.c_str(), H5P_DEFAULT) < 0) return false;
        note_ = from_path + " -> " + to;
        if (H5Ocopy(file_, from_path.c_str(), file_, to.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) return false;
        touched(to);
        return true;
    }

public:
    std::set<std::string> no_fix_;

private:
    hid_t file_;
    Input& in_;
    std::set<std::string>& dirty_;
    std::set<std::string>& dirty_pages_;
    std::vector<Object> all_;
    Object picked_;
};

// Applies the next section of the script to one file: a count byte, then
// that many edits (opcode + arguments). Returns the number of edits tried (an
// edit that fails half way may still have changed the file).
size_t edit_file(const fs::path& path, Input& in, bool fix_checksums, bool fix_pages,
                 const std::function<void(hid_t, std::set<std::string>&)>& extra) {
    const size_t nops = in.u8() % (kMaxOps + 1);
    if (nops == 0 && !extra) return 0;
    h5::Hid fapl = image_file_access(path.string());
    h5::Hid file(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl));
    if (!file.valid()) die("cannot open " + path.string() + " for editing: " + h5::last_error());
    std::set<std::string> dirty, dirty_pages;
    Editor editor(file, in, dirty, dirty_pages);
    // The library's helpers used here throw ImageError on what they do not
    // like (an attribute of an unexpected type...): for the harness that is
    // an edit or a repair that does not happen.
    auto attempt = [](auto&& fn) {
        try {
            return fn();
        } catch (const ImageError&) {
            H5Eclear2(H5E_DEFAULT);
            return decltype(fn())();
        }
    };
    for (size_t i = 0; i < nops; ++i) {
        const uint8_t op = in.u8();
        attempt([&] { return editor.apply(op); });
    }
    if (fix_pages)
        for (const auto& g : dirty_pages) {
            attempt([&] { fix_page_chunks(file, g); });
            dirty.insert(join(g, "page_chunks"));
        }
    if (extra) attempt([&] { extra(file, dirty); });
    if (fix_checksums)
        for (const auto& d : dirty)
            if (!editor.no_fix_.contains(d)) attempt([&] { fix_checksum(file, d); });
    H5Eclear2(H5E_DEFAULT);
    file = h5::Hid();
    if (open_objects() != 0) die("the harness left HDF5 objects open: " + describe_open_objects());
    return nops;
}

// Sets file_bytes of the manifest rows naming the rank file.
void fix_file_bytes(hid_t file, std::set<std::string>& dirty, uint64_t rank_bytes) {
    h5::Hid d = open_obj(file, "/rank_table");
    if (!d.valid() || H5Iget_type(d) != H5I_DATASET) return;
    std::vector<ManifestRankRecord> rows;
    if (!read_rows(d, rows) || rows.size() > 1024) return;
    for (auto& r : rows)
        if (r.file == rank_file_name(0)) r.file_bytes = rank_bytes;
    if (write_rows(d, rows)) dirty.insert("/rank_table");
    H5Eclear2(H5E_DEFAULT);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    h5::quiet_library();
    // HDF5 callocs a 1 MiB type conversion buffer for every H5Dread and, with
    // the default free list limits, hands it back to the system at once: under
    // ASan that is an mmap, page faults and munmap per table read. Keeping
    // freed blocks (up to a bound) makes the target about three times faster.
    H5set_free_list_limits(16 << 20, 4 << 20, 16 << 20, 4 << 20, 64 << 20, 16 << 20);
    g_verbose = getenv("FUZZ_VERBOSE") != nullptr;
    g_root = ckpt::fuzz::make_scratch("struct");
    atexit(remove_scratch);
    g_templates[0] = make_template(g_root / "plain", Compression::None);
    g_templates[1] = make_template(g_root / "zstd", Compression::Zstd);
    g_work = g_root / "work";
    fs::create_directories(g_work);
    if (open_objects() != 0) die("writing the templates left HDF5 objects open");
    g_baseline = IdCounts::now();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Input in(data, size);
    const uint8_t flags = in.u8();
    const Template& t = g_templates[flags & kFlagZstd];
    const unsigned mode = (flags >> kModeShift) & 3;
    const fs::path manifest = g_work / "manifest.h5", rank = g_work / rank_file_name(0);
    spit(manifest, t.manifest);
    spit(rank, t.rank);

    // The rank file's edits, then the manifest's (whose rank_table learns the
    // rank file's new size).
    const bool fix = !(flags & kFlagNoChecksums);
    size_t edits = edit_file(rank, in, fix, !(flags & kFlagNoPageIndex), nullptr);
    const uint64_t rank_bytes = fs::file_size(rank);
    const bool fix_size = !(flags & kFlagNoFileBytes) && rank_bytes != t.rank.size();
    std::function<void(hid_t, std::set<std::string>&)> size_fixer;
    if (fix_size) size_fixer = [&](hid_t file, std::set<std::string>& dirty) { fix_file_bytes(file, dirty, rank_bytes); };
    edits += edit_file(manifest, in, fix, false, size_fixer);
    if (auto d = IdCounts::now().diff(g_baseline); !d.empty()) die("the harness leaked HDF5 ids: " + d);
    if (const char* keep = getenv("FUZZ_KEEP_DIR")) {
        fs::create_directories(keep);
        fs::copy_file(manifest, fs::path(keep) / "manifest.h5", fs::copy_options::overwrite_existing);
        fs::copy_file(rank, fs::path(keep) / rank_file_name(0), fs::copy_options::overwrite_existing);
    }

    // Modes: 0 the checkpoint, 1 the rank file alone, 2 the rank file without
    // page data, 3 the checkpoint with a pool of 3 threads.
    const bool checkpoint = mode == 0 || mode == 3;
    const std::string target = checkpoint ? g_work.string() : rank.string();
    InspectReport report = inspect(target, mode != 2, mode == 3 ? 3 : 1);
    if (open_objects() != 0) die("inspect() left " + std::to_string(open_objects()) + " HDF5 object(s) open");
    if (auto d = IdCounts::now().diff(g_baseline); !d.empty()) die("inspect() leaked HDF5 ids: " + d);
    if (edits == 0 && !report.error.empty())
        die("an unedited checkpoint failed to verify: " + report.error);
    volatile size_t n = format_human(report, true).size() + format_json(report).size();
    (void)n;
    return 0;
}
