// The shim's own MPI datatype engine: a description of one MPI datatype that
// answers what Open MPI 4.1 answers (bounds, size, MPI_Get_elements) and packs
// and unpacks application buffers byte for byte as MPI_Pack/MPI_Unpack do on
// this (homogeneous, x86_64) machine.
//
// No MPI header or library is used here: the shim cannot link the real libmpi.
// Every function is noexcept; errors come back as values (Expected, negative
// byte counts), so the shim can call this from its C entry points.
//
// How the bounds are computed: each constructor performs the same sequence of
// internal "add" steps as Open MPI's ompi_datatype_create_* does, and each step
// updates lb/ub/true bounds/alignment the way opal_datatype_add does. That is
// what makes the Open MPI quirks come out right:
//   * a struct-like type (any type built from several adds, also hvector and
//     hindexed with unaligned byte strides) has its extent rounded up to the
//     largest alignment of its members, unless an upper bound was set by the
//     user (create_resized or an MPI_UB marker);
//   * bounds set by create_resized (or MPI_LB/MPI_UB markers) are sticky: a
//     type containing such a type takes its lb/ub from the marked parts only;
//   * hvector with a byte stride of exactly -1 uses the old type's extent as
//     the stride (Open MPI's "extent == -1 means default" convention);
//   * a type of size 0 that still has bounds (e.g. a vector of a resized empty
//     type) reports true_lb = INT64_MAX and true_ub = INT64_MIN;
//   * MPI_Get_elements counts a predefined pair type (MPI_DOUBLE_INT, ...) as
//     one element per whole item and any leftover bytes as undefined, while a
//     derived type made of pairs counts two basic elements per pair.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ckpt::mpi {

// One entry per C (and C++) predefined datatype of Open MPI 4.1's mpi.h that is
// a single basic element. MPI_LONG_LONG is long_long, MPI_C_COMPLEX is
// c_float_complex. lb_marker/ub_marker are MPI_LB/MPI_UB (removed from MPI-3
// but still exported by libmpi.so.40 for old binaries).
enum class BasicType : uint8_t {
  char_,
  signed_char,
  unsigned_char,
  byte,
  short_,
  unsigned_short,
  int_,
  unsigned_,
  long_,
  unsigned_long,
  long_long,
  unsigned_long_long,
  float_,
  double_,
  long_double,
  wchar,
  c_bool,
  int8,
  uint8,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  c_float_complex,
  c_double_complex,
  c_long_double_complex,
  aint,
  offset,
  count,
  packed,
  cxx_bool,
  cxx_float_complex,
  cxx_double_complex,
  cxx_long_double_complex,
  lb_marker,
  ub_marker,
};
inline constexpr int kBasicTypeCount = static_cast<int>(BasicType::ub_marker) + 1;

// The predefined pair types: in Open MPI these are predefined *derived* types,
// built as the C struct {T1 v1; T2 v2;} (two elements, padding to sizeof).
enum class PairType : uint8_t { float_int, double_int, long_int, two_int, short_int, long_double_int };

struct BasicInfo {
  uint32_t size;   // bytes (x86_64 ABI); 0 for the markers
  uint32_t align;  // alignment Open MPI uses for struct extents
  const char* name;
};
BasicInfo basic_info(BasicType t) noexcept;

// Open MPI's MPI_UNDEFINED.
inline constexpr int64_t kUndefined = -32766;

enum class TypeError : uint8_t {
  none,
  count,      // a negative count (MPI_ERR_COUNT)
  arg,        // a bad argument: negative block length, bad subarray, sizes that differ (MPI_ERR_ARG)
  type,       // a null type pointer, or a marker where data is needed (MPI_ERR_TYPE)
  overflow,   // bounds or size do not fit in 64 bits
  no_memory,  // allocation failed
};
const char* to_string(TypeError e) noexcept;

// A value or an error; C++20 has no std::expected.
template <class T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Expected(TypeError error) : error_(error == TypeError::none ? TypeError::arg : error) {}  // NOLINT
  bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  TypeError error() const noexcept { return error_; }
  T& operator*() & noexcept { return *value_; }
  const T& operator*() const& noexcept { return *value_; }
  T&& operator*() && noexcept { return std::move(*value_); }
  T* operator->() noexcept { return &*value_; }
  const T* operator->() const noexcept { return &*value_; }

 private:
  std::optional<T> value_;
  TypeError error_ = TypeError::none;
};

class TypeMap;
using TypeResult = Expected<TypeMap>;

// A contiguous run of bytes of the type map, relative to the buffer origin.
struct Run {
  int64_t disp;
  uint64_t len;
  bool operator==(const Run&) const = default;
};

// `count` consecutive basic elements of one type (the sequence MPI_Get_elements walks).
struct ElementRun {
  BasicType type;
  uint32_t size;
  uint64_t count;
  bool operator==(const ElementRun&) const = default;
};

// One entry of the compressed description (the program). A leaf stands for
// `count` blocks of `blocklen` contiguous elements of `type` (each `elem_size`
// bytes), block k at disp + k*stride. A loop repeats the `body` entries that
// follow it `count` times, iteration i shifted by i*stride. Displacements are
// those of iteration 0 of every enclosing loop.
struct Node {
  int64_t disp = 0;       // leaf: byte displacement of the first block
  int64_t stride = 0;     // byte distance between blocks (leaf) or iterations (loop)
  uint64_t count = 0;     // blocks (leaf) or iterations (loop), >= 1
  uint64_t blocklen = 0;  // leaf: elements per block; loop: number of body entries
  uint32_t elem_size = 0;
  BasicType type = BasicType::byte;
  bool loop = false;
  bool operator==(const Node&) const = default;
};

enum class Order : uint8_t { c, fortran };

// One block of create_struct: `blocklen` items of *type at byte `disp`.
struct StructBlock {
  int blocklen;
  int64_t disp;
  const TypeMap* type;
};

class TypeMap {
 public:
  // --- constructors (mirror MPI; arrays as MPI passes them) -----------------
  // A predefined basic type with its x86_64 size and alignment.
  static TypeResult predefined(BasicType id) noexcept;
  // A predefined basic type of another size (e.g. a Fortran type mapped on a C
  // id); align 0 means the largest power of two <= 16 dividing the size.
  static TypeResult predefined(BasicType id, uint32_t size, uint32_t align = 0) noexcept;
  static TypeResult pair(PairType id) noexcept;
  static TypeResult contiguous(int64_t count, const TypeMap& old) noexcept;
  static TypeResult vector(int64_t count, int64_t blocklen, int64_t stride, const TypeMap& old) noexcept;
  static TypeResult hvector(int64_t count, int64_t blocklen, int64_t stride_bytes, const TypeMap& old) noexcept;
  static TypeResult indexed(std::span<const int> blocklens, std::span<const int> disps, const TypeMap& old) noexcept;
  static TypeResult hindexed(std::span<const int> blocklens, std::span<const int64_t> disps_bytes,
                             const TypeMap& old) noexcept;
  static TypeResult indexed_block(int64_t blocklen, std::span<const int> disps, const TypeMap& old) noexcept;
  static TypeResult hindexed_block(int64_t blocklen, std::span<const int64_t> disps_bytes,
                                   const TypeMap& old) noexcept;
  // Consecutive blocks of the same type (same identity(), see below) that
  // follow each other are merged, as Open MPI does.
  static TypeResult create_struct(std::span<const StructBlock> blocks) noexcept;
  static TypeResult create_subarray(std::span<const int> sizes, std::span<const int> subsizes,
                                    std::span<const int> starts, Order order, const TypeMap& old) noexcept;
  static TypeResult create_resized(const TypeMap& old, int64_t lb, int64_t extent) noexcept;
  static TypeResult dup(const TypeMap& old) noexcept;
  // create_darray is not provided.

  // --- what MPI reports -----------------------------------------------------
  int64_t lb() const noexcept { return lb_; }
  int64_t ub() const noexcept { return ub_; }
  int64_t extent() const noexcept { return wrap_sub(ub_, lb_); }
  int64_t true_lb() const noexcept { return true_lb_; }
  int64_t true_ub() const noexcept { return true_ub_; }
  int64_t true_extent() const noexcept { return wrap_sub(true_ub_, true_lb_); }
  uint64_t size() const noexcept { return size_; }
  uint32_t align() const noexcept { return align_; }
  // Basic elements in one item (the sum MPI_Get_elements multiplies).
  uint64_t element_count() const noexcept { return nelems_; }
  // One run at disp 0 whose length is the size and the extent.
  bool is_contiguous() const noexcept;
  // The basic type of every element, when they are all of one type (and size).
  std::optional<BasicType> homogeneous_type() const noexcept;
  // Predefined at the MPI level (changes MPI_Get_elements for the pair types).
  bool is_predefined() const noexcept { return (flags_ & kPredefined) != 0; }
  bool has_user_lb() const noexcept { return (flags_ & kUserLb) != 0; }
  bool has_user_ub() const noexcept { return (flags_ & kUserUb) != 0; }
  // Open MPI's CONTIGUOUS / NO_GAPS flags, computed its way (MPI_Pack's shortcuts).
  bool ompi_contiguous() const noexcept { return (flags_ & kContig) != 0; }
  bool ompi_no_gaps() const noexcept { return (flags_ & kNoGaps) != 0; }
  // Identity of the handle: copies share it, every constructor makes a new one
  // (a predefined basic type or pair always has the same one).
  uint64_t identity() const noexcept { return id_; }

  // --- the type map -------------------------------------------------------
  // The compressed description; its size does not grow with a vector's count.
  std::span<const Node> nodes() const noexcept { return prog_; }
  // Calls fn(disp, len) for every run of one item in type-map order, adjacent
  // runs merged. offset is added to every displacement.
  template <class F>
  void for_each_run(F&& fn, int64_t offset = 0) const;
  // The same, materialised (for tests and small maps: this is as long as the
  // type has blocks). Empty on allocation failure.
  std::vector<Run> runs() const noexcept;
  // The one run of an item, when it is a single run.
  std::optional<Run> single_run() const noexcept;
  // The basic-element sequence of one item, runs of one type merged.
  std::vector<ElementRun> elements() const noexcept;

  bool operator==(const TypeMap& o) const noexcept;  // same description and bounds (identity ignored)

  // Two's-complement arithmetic, as Open MPI's C code does it.
  static int64_t wrap_sub(int64_t a, int64_t b) noexcept {
    return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  }
  static int64_t wrap_add(int64_t a, int64_t b) noexcept {
    return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  }

 private:
  friend class TypeMapBuilder;
  enum : uint16_t {
    kUserLb = 1,      // OPAL_DATATYPE_FLAG_USER_LB
    kUserUb = 2,      // OPAL_DATATYPE_FLAG_USER_UB
    kPredefined = 4,  // OMPI_DATATYPE_FLAG_PREDEFINED
    kLbMarker = 8,    // this is MPI_LB (or a dup of it)
    kUbMarker = 16,   // this is MPI_UB
    kSingleRun = 32,  // one item is the one run single_run_ (cached)
    kContig = 64,     // OPAL_DATATYPE_FLAG_CONTIGUOUS, as Open MPI computes it
    kNoGaps = 128,    // OPAL_DATATYPE_FLAG_NO_GAPS, as Open MPI computes it (may be stale, see pack)
  };
  TypeMap() = default;

  std::vector<Node> prog_;
  int64_t lb_ = 0, ub_ = 0, true_lb_ = 0, true_ub_ = 0;
  uint64_t size_ = 0;
  uint64_t nelems_ = 0;
  uint64_t id_ = 0;
  uint32_t align_ = 1;
  uint16_t flags_ = kContig;
  size_t last_top_ = SIZE_MAX;  // index in prog_ of the last top-level entry
  Run single_run_{0, 0};
  bool mixed_ = false;  // elements of more than one (type, size)
};

// --- using a type on buffers ------------------------------------------------
// Bytes MPI_Pack produces for count items; -1 for a negative count or overflow.
int64_t packed_size(const TypeMap& map, int64_t count) noexcept;
// Packs count items (item i at buf + i*extent) into out as MPI_Pack does.
// Returns the bytes written, or -1 (negative count, null buffer with data).
// Like Open MPI, a type it flags gap-free is copied as count*size bytes from
// buf + true_lb; Open MPI keeps that flag when a size-0 part later widens the
// extent (struct {char at 0, empty type at 7}), and so does this.
int64_t pack(const TypeMap& map, const void* buf, int64_t count, void* out) noexcept;
// Calls fn(disp, len) for the byte runs MPI_Pack copies for count items, in
// order (disp relative to buf). For count 1 these are the runs of the map.
template <class F>
void for_each_packed_run(const TypeMap& map, int64_t count, F&& fn);
// Unpacks packed_size(map, count) bytes from in into count items at buf, in
// type-map order (later bytes win where the type overlaps itself); bytes of buf
// outside the type map are left untouched. Returns the bytes read, or -1.
int64_t unpack(const TypeMap& map, const void* in, int64_t count, void* buf) noexcept;
// MPI_Get_elements_x for a message of `bytes` bytes: kUndefined when the bytes
// do not end at an element boundary (or bytes < 0).
int64_t get_elements(const TypeMap& map, int64_t bytes) noexcept;
// MPI_Get_elements: as get_elements, kUndefined also above INT_MAX.
int get_elements_int(const TypeMap& map, int64_t bytes) noexcept;
// MPI_Get_count: whole items, kUndefined when bytes is not a multiple of the
// size (or above INT_MAX); 0 for a type of size 0.
int get_count(const TypeMap& map, int64_t bytes) noexcept;

// --- template implementation -------------------------------------------------
namespace detail {
// Calls emit(disp, len) for every block in type-map order; stops (returning
// false) as soon as emit returns false.
template <class Emit>
bool walk_nodes(const Node* begin, const Node* end, int64_t offset, Emit& emit) {
  for (const Node* p = begin; p < end; ++p) {
    if (p->loop) {
      const Node* body = p + 1;
      const Node* body_end = body + p->blocklen;
      int64_t off = offset;
      for (uint64_t i = 0; i < p->count; ++i) {
        if (!walk_nodes(body, body_end, off, emit)) return false;
        off = TypeMap::wrap_add(off, p->stride);
      }
      p = body_end - 1;
      continue;
    }
    const uint64_t block = p->blocklen * p->elem_size;
    int64_t d = TypeMap::wrap_add(offset, p->disp);
    for (uint64_t k = 0; k < p->count; ++k) {
      if (!emit(d, block)) return false;
      d = TypeMap::wrap_add(d, p->stride);
    }
  }
  return true;
}

// Merges adjacent runs before handing them on to fn(disp, len) -> bool.
template <class F>
struct RunMerger {
  F& fn;
  int64_t disp = 0;
  uint64_t len = 0;
  bool operator()(int64_t d, uint64_t l) {
    if (l == 0) return true;
    if (len != 0 && TypeMap::wrap_sub(d, disp) == static_cast<int64_t>(len)) {
      len += l;
      return true;
    }
    bool go = flush();
    disp = d;
    len = l;
    return go;
  }
  bool flush() {
    if (len == 0) return true;
    const uint64_t l = len;
    len = 0;
    return fn(disp, l);
  }
};
}  // namespace detail

template <class F>
void TypeMap::for_each_run(F&& fn, int64_t offset) const {
  auto call = [&fn](int64_t d, uint64_t l) {
    fn(d, l);
    return true;
  };
  detail::RunMerger<decltype(call)> merge{call};
  detail::walk_nodes(prog_.data(), prog_.data() + prog_.size(), offset, merge);
  merge.flush();
}

template <class F>
void for_each_packed_run(const TypeMap& map, int64_t count, F&& fn) {
  if (count <= 0 || map.size() == 0) return;
  const int64_t extent = map.extent();
  if (map.ompi_no_gaps() || (map.ompi_contiguous() && count == 1)) {
    fn(map.true_lb(), map.size() * static_cast<uint64_t>(count));
    return;
  }
  if (map.ompi_contiguous()) {
    int64_t off = map.true_lb();
    for (int64_t i = 0; i < count; ++i) {
      fn(off, map.size());
      off = TypeMap::wrap_add(off, extent);
    }
    return;
  }
  auto call = [&fn](int64_t d, uint64_t l) {
    fn(d, l);
    return true;
  };
  detail::RunMerger<decltype(call)> merge{call};
  const std::span<const Node> nodes = map.nodes();
  int64_t off = 0;
  for (int64_t i = 0; i < count; ++i) {
    detail::walk_nodes(nodes.data(), nodes.data() + nodes.size(), off, merge);
    off = TypeMap::wrap_add(off, extent);
  }
  merge.flush();
}

}  // namespace ckpt::mpi
