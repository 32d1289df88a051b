// See typemap.hpp. The bounds logic follows Open MPI 4.1's opal_datatype_add
// and ompi_datatype_create_* step by step (checked against the real library by
// tests/unit/typemap_test.cpp); the description is our own, compressed form.
#include "mpi_plugin/shim/typemap.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <new>

namespace ckpt::mpi {

namespace {

constexpr BasicInfo kBasic[kBasicTypeCount] = {
    {1, 1, "MPI_CHAR"},
    {1, 1, "MPI_SIGNED_CHAR"},
    {1, 1, "MPI_UNSIGNED_CHAR"},
    {1, 1, "MPI_BYTE"},
    {2, 2, "MPI_SHORT"},
    {2, 2, "MPI_UNSIGNED_SHORT"},
    {4, 4, "MPI_INT"},
    {4, 4, "MPI_UNSIGNED"},
    {8, 8, "MPI_LONG"},
    {8, 8, "MPI_UNSIGNED_LONG"},
    {8, 8, "MPI_LONG_LONG_INT"},
    {8, 8, "MPI_UNSIGNED_LONG_LONG"},
    {4, 4, "MPI_FLOAT"},
    {8, 8, "MPI_DOUBLE"},
    {16, 16, "MPI_LONG_DOUBLE"},
    {4, 4, "MPI_WCHAR"},
    {1, 1, "MPI_C_BOOL"},
    {1, 1, "MPI_INT8_T"},
    {1, 1, "MPI_UINT8_T"},
    {2, 2, "MPI_INT16_T"},
    {2, 2, "MPI_UINT16_T"},
    {4, 4, "MPI_INT32_T"},
    {4, 4, "MPI_UINT32_T"},
    {8, 8, "MPI_INT64_T"},
    {8, 8, "MPI_UINT64_T"},
    {8, 4, "MPI_C_FLOAT_COMPLEX"},
    {16, 8, "MPI_C_DOUBLE_COMPLEX"},
    {32, 16, "MPI_C_LONG_DOUBLE_COMPLEX"},
    {8, 8, "MPI_AINT"},
    {8, 8, "MPI_OFFSET"},
    {8, 8, "MPI_COUNT"},
    {1, 1, "MPI_PACKED"},
    {1, 1, "MPI_CXX_BOOL"},
    {8, 4, "MPI_CXX_FLOAT_COMPLEX"},
    {16, 8, "MPI_CXX_DOUBLE_COMPLEX"},
    {32, 16, "MPI_CXX_LONG_DOUBLE_COMPLEX"},
    {0, 1, "MPI_LB"},
    {0, 1, "MPI_UB"},
};

// Identities: 1..kBasicTypeCount for the basic types, then the pairs, then
// every constructed type.
constexpr uint64_t kPairIdBase = 256;
std::atomic<uint64_t> g_next_id{1024};
uint64_t fresh_id() noexcept { return g_next_id.fetch_add(1, std::memory_order_relaxed); }

bool mul_u64(uint64_t a, uint64_t b, uint64_t* r) noexcept { return !__builtin_mul_overflow(a, b, r); }
bool add_u64(uint64_t a, uint64_t b, uint64_t* r) noexcept { return !__builtin_add_overflow(a, b, r); }
bool mul_i64(int64_t a, int64_t b, int64_t* r) noexcept { return !__builtin_mul_overflow(a, b, r); }

int64_t wadd(int64_t a, int64_t b) noexcept { return TypeMap::wrap_add(a, b); }
int64_t wsub(int64_t a, int64_t b) noexcept { return TypeMap::wrap_sub(a, b); }
int64_t wmul(int64_t a, int64_t b) noexcept {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

}  // namespace

BasicInfo basic_info(BasicType t) noexcept {
  const auto i = static_cast<unsigned>(t);
  if (i >= static_cast<unsigned>(kBasicTypeCount)) return {0, 1, "?"};
  return kBasic[i];
}

const char* to_string(TypeError e) noexcept {
  switch (e) {
    case TypeError::none: return "no error";
    case TypeError::count: return "negative count";
    case TypeError::arg: return "invalid argument";
    case TypeError::type: return "invalid datatype";
    case TypeError::overflow: return "datatype too large";
    case TypeError::no_memory: return "out of memory";
  }
  return "?";
}

// Builds TypeMaps: the steps of Open MPI's constructors.
class TypeMapBuilder {
 public:
  // ompi_datatype_create: nothing added yet.
  static TypeMap fresh() {
    TypeMap t;
    t.lb_ = INT64_MAX;
    t.ub_ = INT64_MIN;
    t.true_lb_ = INT64_MAX;
    t.true_ub_ = INT64_MIN;
    t.id_ = fresh_id();
    return t;
  }
  // ompi_datatype_duplicate(&ompi_mpi_datatype_null): all zero.
  static TypeMap null_type() {
    TypeMap t;
    t.id_ = fresh_id();
    finish(t);
    return t;
  }

  // opal_datatype_add(base, t, count, disp, extent).
  static TypeError add(TypeMap& b, const TypeMap& t, uint64_t count, int64_t disp, int64_t extent) {
    if (count == 0) return TypeError::none;
    if (extent == -1) extent = t.extent();
    // MPI_LB / MPI_UB: only move the bound they mark.
    if (t.flags_ & TypeMap::kLbMarker) return mark_bound(b, b.lb_, TypeMap::kUserLb, disp, true);
    if (t.flags_ & TypeMap::kUbMarker) return mark_bound(b, b.ub_, TypeMap::kUserUb, disp, false);
    if (count > static_cast<uint64_t>(INT64_MAX)) return TypeError::overflow;

    // OPAL_DATATYPE_LB_UB_CONT
    const int64_t lower = disp;
    const int64_t upper = wadd(disp, wmul(extent, static_cast<int64_t>(count - 1)));
    int64_t lb = lower < upper ? lower : upper;
    int64_t ub = lower < upper ? upper : lower;
    lb = wadd(lb, t.lb_);
    ub = wadd(ub, t.ub_);
    int64_t true_lb = wsub(lb, wsub(t.lb_, t.true_lb_));
    int64_t true_ub = wsub(ub, wsub(t.ub_, t.true_ub_));
    if (true_lb > true_ub) std::swap(true_lb, true_ub);

    if ((t.flags_ ^ b.flags_) & TypeMap::kUserLb) {
      if (b.flags_ & TypeMap::kUserLb) lb = b.lb_;
      b.flags_ |= TypeMap::kUserLb;
    } else {
      lb = std::min(b.lb_, lb);
    }
    if ((t.flags_ ^ b.flags_) & TypeMap::kUserUb) {
      if (b.flags_ & TypeMap::kUserUb) ub = b.ub_;
      b.flags_ |= TypeMap::kUserUb;
    } else {
      ub = std::max(b.ub_, ub);
    }
    b.lb_ = lb;
    b.ub_ = ub;
    b.align_ = std::max(b.align_, t.align_);
    if (!(b.flags_ & TypeMap::kUserUb)) {
      const int64_t epsilon = wsub(b.ub_, b.lb_) % static_cast<int64_t>(b.align_);
      if (epsilon != 0) b.ub_ = wadd(b.ub_, static_cast<int64_t>(b.align_) - epsilon);
    }
    if (t.size_ == 0) return TypeError::none;

    uint64_t add_size = 0, add_elems = 0;
    if (!mul_u64(count, t.size_, &add_size) || !add_u64(b.size_, add_size, &b.size_) ||
        b.size_ > static_cast<uint64_t>(INT64_MAX))
      return TypeError::overflow;
    const int64_t old_true_ub = b.nelems_ == 0 ? disp : b.true_ub_;
    if (!mul_u64(count, t.nelems_, &add_elems) || !add_u64(b.nelems_, add_elems, &b.nelems_))
      return TypeError::overflow;
    b.true_lb_ = std::min(true_lb, b.true_lb_);
    b.true_ub_ = std::max(true_ub, b.true_ub_);
    // Open MPI's contiguity flags (pack takes shortcuts on them).
    const uint16_t both = b.flags_ & t.flags_;
    b.flags_ &= static_cast<uint16_t>(~(TypeMap::kContig | TypeMap::kNoGaps));
    if ((both & TypeMap::kContig) && wadd(disp, t.true_lb_) == old_true_ub &&
        (static_cast<int64_t>(t.size_) == extent || count < 2)) {
      b.flags_ |= TypeMap::kContig;
      if (static_cast<int64_t>(b.size_) == wsub(b.ub_, b.lb_)) b.flags_ |= TypeMap::kNoGaps;
    }
    return append(b, t.prog_, count, extent, disp);
  }

  static TypeError mark_bound(TypeMap& b, int64_t& bound, uint16_t user_flag, int64_t disp, bool lower) {
    if (b.flags_ & user_flag) {
      bound = lower ? std::min(bound, disp) : std::max(bound, disp);
    } else {
      bound = disp;
      b.flags_ |= user_flag;
    }
    if (wsub(b.ub_, b.lb_) != static_cast<int64_t>(b.size_)) b.flags_ &= static_cast<uint16_t>(~TypeMap::kNoGaps);
    return TypeError::none;
  }

  // Caches what the accessors need once construction is over.
  static void finish(TypeMap& t) {
    t.flags_ &= static_cast<uint16_t>(~TypeMap::kSingleRun);
    t.mixed_ = false;
    const Node* first = nullptr;
    for (const Node& n : t.prog_) {
      if (n.loop) continue;
      if (first == nullptr) {
        first = &n;
      } else if (n.type != first->type || n.elem_size != first->elem_size) {
        t.mixed_ = true;
        break;
      }
    }
    int runs = 0;
    Run run{0, 0};
    auto count_runs = [&](int64_t d, uint64_t l) {
      if (++runs > 1) return false;
      run = {d, l};
      return true;
    };
    detail::RunMerger<decltype(count_runs)> merge{count_runs};
    if (detail::walk_nodes(t.prog_.data(), t.prog_.data() + t.prog_.size(), 0, merge)) merge.flush();
    if (runs == 1) {
      t.flags_ |= TypeMap::kSingleRun;
      t.single_run_ = run;
    }
  }

  static TypeMap predefined_map(BasicType id, uint32_t size, uint32_t align, uint64_t identity) {
    TypeMap t;
    t.id_ = identity;
    t.align_ = align;
    t.flags_ = TypeMap::kPredefined | TypeMap::kContig | TypeMap::kNoGaps;
    if (id == BasicType::lb_marker) t.flags_ |= TypeMap::kLbMarker;
    if (id == BasicType::ub_marker) t.flags_ |= TypeMap::kUbMarker;
    if (size != 0) {
      t.ub_ = t.true_ub_ = size;
      t.size_ = size;
      t.nelems_ = 1;
      Node n;
      n.disp = 0;
      n.count = 1;
      n.blocklen = 1;
      n.elem_size = size;
      n.type = id;
      t.prog_.push_back(n);
      t.last_top_ = 0;
    }
    finish(t);
    return t;
  }

  static void set_predefined(TypeMap& t, uint64_t identity) {
    t.flags_ |= TypeMap::kPredefined;
    t.id_ = identity;
  }
  static void set_ub(TypeMap& t, int64_t ub) { t.ub_ = ub; }

  // opal_datatype_resize.
  static void resize(TypeMap& t, int64_t lb, int64_t extent) {
    t.lb_ = lb;
    t.ub_ = wadd(lb, extent);
    t.flags_ |= TypeMap::kUserLb | TypeMap::kUserUb;
    t.flags_ &= static_cast<uint16_t>(~TypeMap::kNoGaps);
    if (extent == static_cast<int64_t>(t.size_) && (t.flags_ & TypeMap::kContig)) t.flags_ |= TypeMap::kNoGaps;
  }
  // ompi_datatype_duplicate.
  static TypeMap duplicate(const TypeMap& old) {
    TypeMap t = old;
    t.flags_ &= static_cast<uint16_t>(~TypeMap::kPredefined);
    t.id_ = fresh_id();
    return t;
  }

 private:
  static uint64_t leaf_bytes(const Node& n) { return n.blocklen * n.elem_size; }

  // Appends a leaf at the top level, merged into the previous top-level leaf
  // when the two make one contiguous block or one regular series of blocks.
  static TypeError push_leaf(TypeMap& b, Node n) {
    if (n.count > 1 && n.stride == static_cast<int64_t>(leaf_bytes(n))) {
      if (!mul_u64(n.blocklen, n.count, &n.blocklen)) return TypeError::overflow;
      n.count = 1;
      n.stride = 0;
    }
    if (n.count == 1) n.stride = 0;
    if (b.last_top_ != SIZE_MAX && b.last_top_ + 1 == b.prog_.size() && !b.prog_.back().loop) {
      Node& a = b.prog_.back();
      if (a.type == n.type && a.elem_size == n.elem_size) {
        // one contiguous block
        if (a.count == 1 && n.count == 1 &&
            wsub(n.disp, a.disp) == static_cast<int64_t>(leaf_bytes(a))) {
          uint64_t len;
          if (!add_u64(a.blocklen, n.blocklen, &len)) return TypeError::overflow;
          a.blocklen = len;
          return TypeError::none;
        }
        // one series of equal blocks
        if (a.blocklen == n.blocklen) {
          const int64_t s = a.count > 1 ? a.stride : (n.count > 1 ? n.stride : wsub(n.disp, a.disp));
          int64_t span = 0;
          if ((a.count == 1 || a.stride == s) && (n.count == 1 || n.stride == s) &&
              mul_i64(static_cast<int64_t>(a.count), s, &span) && wadd(a.disp, span) == n.disp &&
              a.count + n.count > a.count) {
            a.count += n.count;
            a.stride = s;
            if (a.stride == static_cast<int64_t>(leaf_bytes(a)) &&
                mul_u64(a.blocklen, a.count, &a.blocklen)) {
              a.count = 1;
              a.stride = 0;
            }
            return TypeError::none;
          }
        }
      }
    }
    b.prog_.push_back(n);
    b.last_top_ = b.prog_.size() - 1;
    return TypeError::none;
  }

  // Appends body (a whole program) shifted by disp at the top level.
  static TypeError append_shifted(TypeMap& b, const std::vector<Node>& body, int64_t disp) {
    for (size_t i = 0; i < body.size(); ++i) {
      Node n = body[i];
      if (!n.loop) {
        n.disp = wadd(n.disp, disp);
        if (TypeError e = push_leaf(b, n); e != TypeError::none) return e;
        continue;
      }
      b.last_top_ = b.prog_.size();
      b.prog_.push_back(n);
      copy_shifted(b, body, i + 1, i + 1 + n.blocklen, disp);
      i += n.blocklen;
    }
    return TypeError::none;
  }

  static void copy_shifted(TypeMap& b, const std::vector<Node>& body, size_t from, size_t to, int64_t disp) {
    for (size_t j = from; j < to; ++j) {
      Node n = body[j];
      if (!n.loop) n.disp = wadd(n.disp, disp);
      b.prog_.push_back(n);
    }
  }

  // Appends count repetitions of body, extent apart, shifted by disp.
  static TypeError append(TypeMap& b, const std::vector<Node>& body, uint64_t count, int64_t extent,
                          int64_t disp) {
    if (body.empty()) return TypeError::none;
    if (count == 1) return append_shifted(b, body, disp);
    if (body.size() == 1) {
      Node n = body[0];
      n.disp = wadd(n.disp, disp);
      if (n.count == 1) {
        n.count = count;
        n.stride = extent;
        return push_leaf(b, n);
      }
      int64_t span = 0;
      if (mul_i64(static_cast<int64_t>(n.count), n.stride, &span) && span == extent &&
          mul_u64(n.count, count, &n.count))
        return push_leaf(b, n);
    } else if (body[0].loop && body[0].blocklen + 1 == body.size()) {
      int64_t span = 0;
      uint64_t total = 0;
      if (mul_i64(static_cast<int64_t>(body[0].count), body[0].stride, &span) && span == extent &&
          mul_u64(body[0].count, count, &total)) {
        b.last_top_ = b.prog_.size();
        Node loop = body[0];
        loop.count = total;
        b.prog_.push_back(loop);
        copy_shifted(b, body, 1, body.size(), disp);
        return TypeError::none;
      }
    }
    Node loop;
    loop.loop = true;
    loop.count = count;
    loop.stride = extent;
    loop.blocklen = body.size();
    b.last_top_ = b.prog_.size();
    b.prog_.push_back(loop);
    copy_shifted(b, body, 0, body.size(), disp);
    return TypeError::none;
  }
};

namespace {

using B = TypeMapBuilder;

// Runs a constructor body, turning allocation failure into an error.
template <class F>
TypeResult guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return TypeError::no_memory;
  } catch (...) {
    return TypeError::arg;
  }
}

TypeResult done(TypeMap t, TypeError e) {
  if (e != TypeError::none) return e;
  B::finish(t);
  return t;
}

uint32_t natural_align(uint32_t size) {
  uint32_t a = 1;
  while (a < 16 && size % (a * 2) == 0) a *= 2;
  return a;
}

}  // namespace

TypeResult TypeMap::predefined(BasicType id) noexcept {
  const auto i = static_cast<unsigned>(id);
  if (i >= static_cast<unsigned>(kBasicTypeCount)) return TypeError::type;
  return guarded([&]() -> TypeResult { return B::predefined_map(id, kBasic[i].size, kBasic[i].align, i + 1); });
}

TypeResult TypeMap::predefined(BasicType id, uint32_t size, uint32_t align) noexcept {
  const auto i = static_cast<unsigned>(id);
  if (i >= static_cast<unsigned>(kBasicTypeCount)) return TypeError::type;
  if (id == BasicType::lb_marker || id == BasicType::ub_marker) {
    if (size != 0) return TypeError::arg;
  } else if (size == 0) {
    return TypeError::arg;
  }
  if (align == 0) align = size == kBasic[i].size ? kBasic[i].align : natural_align(size);
  const bool standard = size == kBasic[i].size && align == kBasic[i].align;
  return guarded([&]() -> TypeResult { return B::predefined_map(id, size, align, standard ? i + 1 : fresh_id()); });
}

TypeResult TypeMap::pair(PairType id) noexcept {
  // DECLARE_MPI2_COMPOSED_STRUCT_DDT: the struct {T1 v1; T2 v2;}, its extent
  // forced to sizeof when the struct does not end right after v2.
  struct Layout {
    BasicType t1, t2;
    int64_t disp2, sizeof_struct;
  };
  static constexpr Layout kLayout[] = {
      {BasicType::float_, BasicType::int_, 4, 8},         {BasicType::double_, BasicType::int_, 8, 16},
      {BasicType::long_, BasicType::int_, 8, 16},         {BasicType::int_, BasicType::int_, 4, 8},
      {BasicType::short_, BasicType::int_, 4, 8},         {BasicType::long_double, BasicType::int_, 16, 32},
  };
  const auto i = static_cast<unsigned>(id);
  if (i >= std::size(kLayout)) return TypeError::type;
  return guarded([&]() -> TypeResult {
    const Layout& l = kLayout[i];
    TypeResult a = predefined(l.t1), b = predefined(l.t2);
    if (!a || !b) return TypeError::no_memory;
    const StructBlock blocks[2] = {{1, 0, &*a}, {1, l.disp2, &*b}};
    TypeResult s = create_struct(blocks);
    if (!s) return s;
    if (l.sizeof_struct != l.disp2 + basic_info(l.t2).size) B::set_ub(*s, l.sizeof_struct);
    B::set_predefined(*s, kPairIdBase + i);
    return s;
  });
}

TypeResult TypeMap::contiguous(int64_t count, const TypeMap& old) noexcept {
  if (count < 0) return TypeError::count;
  return guarded([&]() -> TypeResult {
    if (count == 0 || old.size_ == 0) return B::null_type();
    TypeMap t = B::fresh();
    const TypeError e = B::add(t, old, count, 0, old.extent());
    return done(std::move(t), e);
  });
}

namespace {
// ompi_datatype_create_vector / _hvector, stride already in bytes.
TypeResult vector_bytes(int64_t count, int64_t blocklen, int64_t stride, bool contiguous_blocks,
                        const TypeMap& old) {
  if (count == 0 || blocklen == 0) return B::null_type();
  const int64_t extent = old.extent();
  TypeMap t = B::fresh();
  TypeError e;
  if (contiguous_blocks || count <= 1) {
    uint64_t n;
    if (!mul_u64(count, blocklen, &n)) return TypeError::overflow;
    e = B::add(t, old, n, 0, extent);
  } else if (blocklen == 1) {
    e = B::add(t, old, count, 0, stride);
  } else {
    TypeMap block = B::fresh();
    e = B::add(block, old, blocklen, 0, extent);
    if (e == TypeError::none) e = B::add(t, block, count, 0, stride);
  }
  return done(std::move(t), e);
}
}  // namespace

TypeResult TypeMap::vector(int64_t count, int64_t blocklen, int64_t stride, const TypeMap& old) noexcept {
  if (count < 0) return TypeError::count;
  if (blocklen < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return vector_bytes(count, blocklen, wmul(old.extent(), stride), blocklen == stride, old);
  });
}

TypeResult TypeMap::hvector(int64_t count, int64_t blocklen, int64_t stride_bytes, const TypeMap& old) noexcept {
  if (count < 0) return TypeError::count;
  if (blocklen < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return vector_bytes(count, blocklen, stride_bytes, wmul(old.extent(), blocklen) == stride_bytes, old);
  });
}

namespace {
// The loop of ompi_datatype_create_(h)indexed(_block): blocks that follow each
// other (in units of the old type for indexed, bytes for hindexed) are merged.
// blocklen(i) and disp(i) give block i; scale is the extent for indexed, 1 for
// hindexed.
// empty_if_no_data: (h)indexed give the empty type for an old type of size 0,
// (h)indexed_block do not.
template <class Len, class Disp>
TypeResult indexed_common(size_t count, Len blocklen, Disp disp, bool byte_disps, bool empty_if_no_data,
                          const TypeMap& old) {
  size_t first = 0;
  while (first < count && blocklen(first) == 0) ++first;
  if (first == count || (empty_if_no_data && old.size() == 0)) return B::null_type();
  const int64_t extent = old.extent();
  const int64_t unit = byte_disps ? extent : 1;  // what endat advances by per item
  const int64_t scale = byte_disps ? 1 : extent;
  TypeMap t = B::fresh();
  int64_t d = disp(first);
  int64_t len = blocklen(first);
  int64_t endat = wadd(d, wmul(len, unit));
  for (size_t i = first + 1; i < count; ++i) {
    if (endat == disp(i)) {
      len += blocklen(i);
      endat = wadd(endat, wmul(blocklen(i), unit));
    } else {
      if (TypeError e = B::add(t, old, len, wmul(d, scale), extent); e != TypeError::none) return e;
      d = disp(i);
      len = blocklen(i);
      endat = wadd(d, wmul(len, unit));
    }
  }
  const TypeError e = B::add(t, old, len, wmul(d, scale), extent);
  return done(std::move(t), e);
}
}  // namespace

TypeResult TypeMap::indexed(std::span<const int> blocklens, std::span<const int> disps, const TypeMap& old) noexcept {
  if (blocklens.size() != disps.size()) return TypeError::arg;
  for (int l : blocklens)
    if (l < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return indexed_common(
        blocklens.size(), [&](size_t i) -> int64_t { return blocklens[i]; },
        [&](size_t i) -> int64_t { return disps[i]; }, false, true, old);
  });
}

TypeResult TypeMap::hindexed(std::span<const int> blocklens, std::span<const int64_t> disps_bytes,
                             const TypeMap& old) noexcept {
  if (blocklens.size() != disps_bytes.size()) return TypeError::arg;
  for (int l : blocklens)
    if (l < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return indexed_common(
        blocklens.size(), [&](size_t i) -> int64_t { return blocklens[i]; },
        [&](size_t i) -> int64_t { return disps_bytes[i]; }, true, true, old);
  });
}

TypeResult TypeMap::indexed_block(int64_t blocklen, std::span<const int> disps, const TypeMap& old) noexcept {
  if (blocklen < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return indexed_common(
        disps.size(), [&](size_t) { return blocklen; }, [&](size_t i) -> int64_t { return disps[i]; }, false,
        false, old);
  });
}

TypeResult TypeMap::hindexed_block(int64_t blocklen, std::span<const int64_t> disps_bytes,
                                   const TypeMap& old) noexcept {
  if (blocklen < 0) return TypeError::arg;
  return guarded([&]() -> TypeResult {
    return indexed_common(
        disps_bytes.size(), [&](size_t) { return blocklen; }, [&](size_t i) -> int64_t { return disps_bytes[i]; },
        true, false, old);
  });
}

TypeResult TypeMap::create_struct(std::span<const StructBlock> blocks) noexcept {
  for (const StructBlock& b : blocks) {
    if (b.blocklen < 0) return TypeError::arg;
    if (b.type == nullptr) return TypeError::type;
  }
  return guarded([&]() -> TypeResult {
    size_t first = 0;
    while (first < blocks.size() && blocks[first].blocklen == 0) ++first;
    if (first == blocks.size()) return B::null_type();
    TypeMap t = B::fresh();
    const TypeMap* last = blocks[first].type;
    int64_t len = blocks[first].blocklen;
    int64_t extent = last->extent();
    int64_t d = blocks[first].disp;
    int64_t endto = wadd(d, wmul(extent, len));
    for (size_t i = first + 1; i < blocks.size(); ++i) {
      const StructBlock& b = blocks[i];
      if (b.type->identity() == last->identity() && b.disp == endto) {
        len += b.blocklen;
        endto = wadd(d, wmul(len, extent));
      } else {
        if (TypeError e = B::add(t, *last, len, d, extent); e != TypeError::none) return e;
        last = b.type;
        extent = last->extent();
        len = b.blocklen;
        d = b.disp;
        endto = wadd(d, wmul(extent, len));
      }
    }
    const TypeError e = B::add(t, *last, len, d, extent);
    return done(std::move(t), e);
  });
}

TypeResult TypeMap::create_subarray(std::span<const int> sizes, std::span<const int> subsizes,
                                    std::span<const int> starts, Order order, const TypeMap& old) noexcept {
  const size_t ndims = sizes.size();
  if (subsizes.size() != ndims || starts.size() != ndims) return TypeError::arg;
  if (order != Order::c && order != Order::fortran) return TypeError::arg;
  for (size_t i = 0; i < ndims; ++i) {
    if (sizes[i] < 1 || subsizes[i] < 1 || subsizes[i] > sizes[i]) return TypeError::arg;
    if (starts[i] < 0 || starts[i] > sizes[i] - subsizes[i]) return TypeError::arg;
  }
  return guarded([&]() -> TypeResult {
    if (ndims == 0) return B::null_type();
    const int64_t extent = old.extent();
    int64_t size, displ;
    TypeResult last = TypeError::arg;
    if (ndims == 1) {
      last = contiguous(subsizes[0], old);
      size = sizes[0];
      displ = starts[0];
    } else {
      ptrdiff_t i = order == Order::c ? static_cast<ptrdiff_t>(ndims) - 1 : 0;
      const ptrdiff_t step = order == Order::c ? -1 : 1;
      const ptrdiff_t end = order == Order::c ? -1 : static_cast<ptrdiff_t>(ndims);
      last = vector(subsizes[i + step], subsizes[i], sizes[i], old);
      size = static_cast<int64_t>(sizes[i]) * sizes[i + step];
      displ = starts[i] + static_cast<int64_t>(starts[i + step]) * sizes[i];
      for (i += 2 * step; last && i != end; i += step) {
        last = hvector(subsizes[i], 1, wmul(size, extent), *last);
        displ = wadd(displ, wmul(size, starts[i]));
        size = wmul(size, sizes[i]);
      }
    }
    if (!last) return last;
    // The last type placed at its start, then given the whole array's bounds.
    TypeMap t = B::fresh();
    if (TypeError e = B::add(t, *last, 1, wmul(displ, extent), last->extent()); e != TypeError::none) return e;
    B::resize(t, 0, wmul(size, extent));
    return done(std::move(t), TypeError::none);
  });
}

TypeResult TypeMap::create_resized(const TypeMap& old, int64_t lb, int64_t extent) noexcept {
  return guarded([&]() -> TypeResult {
    TypeMap t = B::duplicate(old);
    B::resize(t, lb, extent);
    return t;
  });
}

TypeResult TypeMap::dup(const TypeMap& old) noexcept {
  return guarded([&]() -> TypeResult { return B::duplicate(old); });
}

std::optional<Run> TypeMap::single_run() const noexcept {
  if (flags_ & kSingleRun) return single_run_;
  return std::nullopt;
}

bool TypeMap::is_contiguous() const noexcept {
  return (flags_ & kSingleRun) && single_run_.disp == 0 && single_run_.len == size_ &&
         static_cast<int64_t>(size_) == extent();
}

std::optional<BasicType> TypeMap::homogeneous_type() const noexcept {
  if (mixed_) return std::nullopt;
  for (const Node& n : prog_)
    if (!n.loop) return n.type;
  return std::nullopt;
}

std::vector<Run> TypeMap::runs() const noexcept {
  std::vector<Run> out;
  try {
    for_each_run([&](int64_t d, uint64_t l) { out.push_back({d, l}); });
  } catch (...) {
    out.clear();
  }
  return out;
}

namespace {
void collect_elements(const Node* begin, const Node* end, std::vector<ElementRun>& out) {
  for (const Node* p = begin; p < end; ++p) {
    if (p->loop) {
      const Node* body = p + 1;
      for (uint64_t i = 0; i < p->count; ++i) collect_elements(body, body + p->blocklen, out);
      p += p->blocklen;
      continue;
    }
    const uint64_t n = p->count * p->blocklen;
    if (!out.empty() && out.back().type == p->type && out.back().size == p->elem_size)
      out.back().count += n;
    else
      out.push_back({p->type, p->elem_size, n});
  }
}

// Bytes and elements of one pass over [begin, end).
void measure(const Node* begin, const Node* end, uint64_t& bytes, uint64_t& elems) {
  bytes = elems = 0;
  for (const Node* p = begin; p < end; ++p) {
    if (p->loop) {
      uint64_t b, e;
      measure(p + 1, p + 1 + p->blocklen, b, e);
      bytes += b * p->count;
      elems += e * p->count;
      p += p->blocklen;
      continue;
    }
    bytes += p->count * p->blocklen * p->elem_size;
    elems += p->count * p->blocklen;
  }
}

// opal_datatype_get_element_count for rem < size bytes: the whole elements
// that rem bytes hold, walking the map; false when rem ends inside one.
bool leftover_elements(const Node* begin, const Node* end, uint64_t& rem, uint64_t& elems, bool& exact) {
  for (const Node* p = begin; p < end; ++p) {
    if (p->loop) {
      uint64_t b, e;
      measure(p + 1, p + 1 + p->blocklen, b, e);
      const uint64_t full = b == 0 ? p->count : std::min<uint64_t>(p->count, rem / b);
      elems += full * e;
      rem -= full * b;
      if (full < p->count) return leftover_elements(p + 1, p + 1 + p->blocklen, rem, elems, exact);
      p += p->blocklen;
      continue;
    }
    const uint64_t total = p->count * p->blocklen * p->elem_size;
    if (total >= rem) {
      elems += rem / p->elem_size;
      exact = rem % p->elem_size == 0;
      return true;
    }
    elems += p->count * p->blocklen;
    rem -= total;
  }
  exact = rem == 0;
  return true;
}
}  // namespace

std::vector<ElementRun> TypeMap::elements() const noexcept {
  std::vector<ElementRun> out;
  try {
    collect_elements(prog_.data(), prog_.data() + prog_.size(), out);
  } catch (...) {
    out.clear();
  }
  return out;
}

bool TypeMap::operator==(const TypeMap& o) const noexcept {
  return prog_ == o.prog_ && lb_ == o.lb_ && ub_ == o.ub_ && true_lb_ == o.true_lb_ && true_ub_ == o.true_ub_ &&
         size_ == o.size_ && nelems_ == o.nelems_ && align_ == o.align_ && flags_ == o.flags_;
}

int64_t packed_size(const TypeMap& map, int64_t count) noexcept {
  if (count < 0) return -1;
  uint64_t total;
  if (!mul_u64(map.size(), static_cast<uint64_t>(count), &total) || total > static_cast<uint64_t>(INT64_MAX))
    return -1;
  return static_cast<int64_t>(total);
}

int64_t pack(const TypeMap& map, const void* buf, int64_t count, void* out) noexcept {
  const int64_t total = packed_size(map, count);
  if (total <= 0) return total;
  if (buf == nullptr || out == nullptr) return -1;
  const char* src = static_cast<const char*>(buf);
  char* dst = static_cast<char*>(out);
  for_each_packed_run(map, count, [&](int64_t d, uint64_t l) {
                        std::memcpy(dst, src + d, l);
                        dst += l;
                      });
  return total;
}

int64_t unpack(const TypeMap& map, const void* in, int64_t count, void* buf) noexcept {
  const int64_t total = packed_size(map, count);
  if (total <= 0) return total;
  if (buf == nullptr || in == nullptr) return -1;
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(buf);
  for_each_packed_run(map, count, [&](int64_t d, uint64_t l) {
                        std::memcpy(dst + d, src, l);
                        src += l;
                      });
  return total;
}

int64_t get_elements(const TypeMap& map, int64_t bytes) noexcept {
  if (bytes < 0) return kUndefined;
  const uint64_t size = map.size();
  if (size == 0) return 0;
  const uint64_t full = static_cast<uint64_t>(bytes) / size;
  uint64_t rem = static_cast<uint64_t>(bytes) - full * size;
  if (map.is_predefined()) {
    if (rem != 0) return kUndefined;
    return static_cast<int64_t>(full);
  }
  uint64_t count;
  if (!mul_u64(full, map.element_count(), &count)) return kUndefined;
  if (rem != 0) {
    uint64_t elems = 0;
    bool exact = false;
    const std::span<const Node> nodes = map.nodes();
    leftover_elements(nodes.data(), nodes.data() + nodes.size(), rem, elems, exact);
    if (!exact) return kUndefined;
    count += elems;
  }
  if (count > static_cast<uint64_t>(INT64_MAX)) return kUndefined;
  return static_cast<int64_t>(count);
}

int get_elements_int(const TypeMap& map, int64_t bytes) noexcept {
  const int64_t n = get_elements(map, bytes);
  return n > INT_MAX ? static_cast<int>(kUndefined) : static_cast<int>(n);
}

int get_count(const TypeMap& map, int64_t bytes) noexcept {
  if (bytes < 0) return static_cast<int>(kUndefined);
  const uint64_t size = map.size();
  if (size == 0) return 0;
  const uint64_t n = static_cast<uint64_t>(bytes) / size;
  if (n * size != static_cast<uint64_t>(bytes) || n > static_cast<uint64_t>(INT_MAX))
    return static_cast<int>(kUndefined);
  return static_cast<int>(n);
}

}  // namespace ckpt::mpi
