// The shim's datatype engine against the real Open MPI: every type is built
// twice, with MPI and with ckpt::mpi::TypeMap, and the two must agree on
// bounds, size, MPI_Pack/MPI_Unpack bytes and MPI_Get_elements/MPI_Get_count.
// Runs as an MPI singleton (no mpirun); main() calls MPI_Init.
#include <mpi.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mpi_plugin/shim/typemap.hpp"

// MPI_LB and MPI_UB: removed from MPI-3, mpi.h hides them, libmpi.so.40 still
// exports them (and old binaries use them).
extern "C" {
extern struct ompi_predefined_datatype_t ompi_mpi_lb;
extern struct ompi_predefined_datatype_t ompi_mpi_ub;
}

namespace {

using ckpt::mpi::BasicType;
using ckpt::mpi::Order;
using ckpt::mpi::PairType;
using ckpt::mpi::StructBlock;
using ckpt::mpi::TypeMap;
using ckpt::mpi::TypeResult;

MPI_Datatype mpi_basic(BasicType t) {
  switch (t) {
    case BasicType::char_: return MPI_CHAR;
    case BasicType::signed_char: return MPI_SIGNED_CHAR;
    case BasicType::unsigned_char: return MPI_UNSIGNED_CHAR;
    case BasicType::byte: return MPI_BYTE;
    case BasicType::short_: return MPI_SHORT;
    case BasicType::unsigned_short: return MPI_UNSIGNED_SHORT;
    case BasicType::int_: return MPI_INT;
    case BasicType::unsigned_: return MPI_UNSIGNED;
    case BasicType::long_: return MPI_LONG;
    case BasicType::unsigned_long: return MPI_UNSIGNED_LONG;
    case BasicType::long_long: return MPI_LONG_LONG_INT;
    case BasicType::unsigned_long_long: return MPI_UNSIGNED_LONG_LONG;
    case BasicType::float_: return MPI_FLOAT;
    case BasicType::double_: return MPI_DOUBLE;
    case BasicType::long_double: return MPI_LONG_DOUBLE;
    case BasicType::wchar: return MPI_WCHAR;
    case BasicType::c_bool: return MPI_C_BOOL;
    case BasicType::int8: return MPI_INT8_T;
    case BasicType::uint8: return MPI_UINT8_T;
    case BasicType::int16: return MPI_INT16_T;
    case BasicType::uint16: return MPI_UINT16_T;
    case BasicType::int32: return MPI_INT32_T;
    case BasicType::uint32: return MPI_UINT32_T;
    case BasicType::int64: return MPI_INT64_T;
    case BasicType::uint64: return MPI_UINT64_T;
    case BasicType::c_float_complex: return MPI_C_FLOAT_COMPLEX;
    case BasicType::c_double_complex: return MPI_C_DOUBLE_COMPLEX;
    case BasicType::c_long_double_complex: return MPI_C_LONG_DOUBLE_COMPLEX;
    case BasicType::aint: return MPI_AINT;
    case BasicType::offset: return MPI_OFFSET;
    case BasicType::count: return MPI_COUNT;
    case BasicType::packed: return MPI_PACKED;
    case BasicType::cxx_bool: return MPI_CXX_BOOL;
    case BasicType::cxx_float_complex: return MPI_CXX_FLOAT_COMPLEX;
    case BasicType::cxx_double_complex: return MPI_CXX_DOUBLE_COMPLEX;
    case BasicType::cxx_long_double_complex: return MPI_CXX_LONG_DOUBLE_COMPLEX;
    case BasicType::lb_marker: return reinterpret_cast<MPI_Datatype>(&ompi_mpi_lb);
    case BasicType::ub_marker: return reinterpret_cast<MPI_Datatype>(&ompi_mpi_ub);
  }
  return MPI_DATATYPE_NULL;
}

MPI_Datatype mpi_pair(PairType t) {
  switch (t) {
    case PairType::float_int: return MPI_FLOAT_INT;
    case PairType::double_int: return MPI_DOUBLE_INT;
    case PairType::long_int: return MPI_LONG_INT;
    case PairType::two_int: return MPI_2INT;
    case PairType::short_int: return MPI_SHORT_INT;
    case PairType::long_double_int: return MPI_LONG_DOUBLE_INT;
  }
  return MPI_DATATYPE_NULL;
}

constexpr PairType kPairs[] = {PairType::float_int, PairType::double_int, PairType::long_int,
                               PairType::two_int,   PairType::short_int,  PairType::long_double_int};

// One datatype built both ways. Owns the MPI handle unless predefined.
struct Both {
  MPI_Datatype mpi = MPI_DATATYPE_NULL;
  std::unique_ptr<TypeMap> map;
  std::string desc;
  bool owned = false;
  Both() = default;
  Both(const Both&) = delete;
  Both& operator=(const Both&) = delete;
  ~Both() {
    if (owned && mpi != MPI_DATATYPE_NULL) MPI_Type_free(&mpi);
  }
};
using P = std::shared_ptr<Both>;

// Keeps every type of a test case alive (struct blocks point into them).
class Types {
 public:
  P basic(BasicType t) {
    auto b = std::make_shared<Both>();
    b->mpi = mpi_basic(t);
    b->map = take(TypeMap::predefined(t));
    b->desc = ckpt::mpi::basic_info(t).name;
    return keep(b);
  }
  P pair(PairType t) {
    auto b = std::make_shared<Both>();
    b->mpi = mpi_pair(t);
    b->map = take(TypeMap::pair(t));
    b->desc = "pair" + std::to_string(static_cast<int>(t));
    return keep(b);
  }
  // Builds with MPI (make_mpi fills in the handle and returns MPI's code) and
  // with TypeMap (r); both must succeed or both fail.
  template <class MakeMpi>
  P made(MakeMpi make_mpi, TypeResult r, std::string desc) {
    MPI_Datatype handle = MPI_DATATYPE_NULL;
    const int mpi_rc = make_mpi(&handle);
    EXPECT_EQ(mpi_rc == MPI_SUCCESS, r.ok()) << desc << ": MPI rc " << mpi_rc << ", TypeMap "
                                             << ckpt::mpi::to_string(r.error());
    if (mpi_rc != MPI_SUCCESS || !r.ok()) {
      if (mpi_rc == MPI_SUCCESS) MPI_Type_free(&handle);
      return nullptr;
    }
    auto b = std::make_shared<Both>();
    b->mpi = handle;
    b->owned = true;
    EXPECT_EQ(MPI_Type_commit(&b->mpi), MPI_SUCCESS) << desc;
    b->map = std::make_unique<TypeMap>(std::move(*r));
    b->desc = std::move(desc);
    return keep(b);
  }

  P contiguous(int n, const P& o) {
    return made([&](MPI_Datatype* t) { return MPI_Type_contiguous(n, o->mpi, t); }, TypeMap::contiguous(n, *o->map),
                call("contig", n, o->desc));
  }
  P vector(int n, int bl, int stride, const P& o) {
    return made([&](MPI_Datatype* t) { return MPI_Type_vector(n, bl, stride, o->mpi, t); },
                TypeMap::vector(n, bl, stride, *o->map), call("vector", n, bl, stride, o->desc));
  }
  P hvector(int n, int bl, MPI_Aint stride, const P& o) {
    return made([&](MPI_Datatype* t) { return MPI_Type_create_hvector(n, bl, stride, o->mpi, t); },
                TypeMap::hvector(n, bl, stride, *o->map), call("hvector", n, bl, stride, o->desc));
  }
  P indexed(std::vector<int> bl, std::vector<int> d, const P& o) {
    return made([&](MPI_Datatype* t) { return MPI_Type_indexed(static_cast<int>(bl.size()), bl.data(), d.data(), o->mpi, t); },
                TypeMap::indexed(bl, d, *o->map), call("indexed", list(bl, d), o->desc));
  }
  P hindexed(std::vector<int> bl, std::vector<MPI_Aint> d, const P& o) {
    return made(
        [&](MPI_Datatype* t) { return MPI_Type_create_hindexed(static_cast<int>(bl.size()), bl.data(), d.data(), o->mpi, t); },
        TypeMap::hindexed(bl, d, *o->map), call("hindexed", list(bl, d), o->desc));
  }
  P indexed_block(int bl, std::vector<int> d, const P& o) {
    return made(
        [&](MPI_Datatype* t) { return MPI_Type_create_indexed_block(static_cast<int>(d.size()), bl, d.data(), o->mpi, t); },
        TypeMap::indexed_block(bl, d, *o->map), call("indexed_block", bl, list(d, d), o->desc));
  }
  P hindexed_block(int bl, std::vector<MPI_Aint> d, const P& o) {
    return made(
        [&](MPI_Datatype* t) { return MPI_Type_create_hindexed_block(static_cast<int>(d.size()), bl, d.data(), o->mpi, t); },
        TypeMap::hindexed_block(bl, d, *o->map), call("hindexed_block", bl, list(d, d), o->desc));
  }
  struct Field {
    int bl;
    MPI_Aint disp;
    P type;
  };
  P structure(const std::vector<Field>& f) {
    std::vector<int> bl;
    std::vector<MPI_Aint> d;
    std::vector<MPI_Datatype> ty;
    std::vector<StructBlock> blocks;
    std::string desc = "struct{";
    for (const Field& x : f) {
      bl.push_back(x.bl);
      d.push_back(x.disp);
      ty.push_back(x.type->mpi);
      blocks.push_back({x.bl, x.disp, x.type->map.get()});
      desc += x.type->desc + " x" + std::to_string(x.bl) + " @" + std::to_string(x.disp) + "; ";
    }
    return made([&](MPI_Datatype* t) { return MPI_Type_create_struct(static_cast<int>(f.size()), bl.data(), d.data(), ty.data(), t); },
                TypeMap::create_struct(blocks), desc + "}");
  }
  P subarray(std::vector<int> sizes, std::vector<int> sub, std::vector<int> start, bool c_order, const P& o) {
    return made(
        [&](MPI_Datatype* t) {
          return MPI_Type_create_subarray(static_cast<int>(sizes.size()), sizes.data(), sub.data(), start.data(),
                                          c_order ? MPI_ORDER_C : MPI_ORDER_FORTRAN, o->mpi, t);
        },
        TypeMap::create_subarray(sizes, sub, start, c_order ? Order::c : Order::fortran, *o->map),
        call(c_order ? "subarrayC" : "subarrayF", list(sizes, sub), list(start, start), o->desc));
  }
  P resized(const P& o, MPI_Aint lb, MPI_Aint extent) {
    return made([&](MPI_Datatype* t) { return MPI_Type_create_resized(o->mpi, lb, extent, t); },
                TypeMap::create_resized(*o->map, lb, extent), call("resized", o->desc, lb, extent));
  }
  P dup(const P& o) {
    return made([&](MPI_Datatype* t) { return MPI_Type_dup(o->mpi, t); }, TypeMap::dup(*o->map), call("dup", o->desc));
  }

 private:
  static std::unique_ptr<TypeMap> take(TypeResult r) {
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::make_unique<TypeMap>(std::move(*r)) : nullptr;
  }
  P keep(P b) {
    all_.push_back(b);
    return b;
  }
  // "name(a,b,...)": a constructor call as failure messages show it.
  template <class... Args>
  static std::string call(const char* name, const Args&... args) {
    std::string s = std::string(name) + "(";
    const char* sep = "";
    ((s += sep + text(args), sep = ","), ...);
    return s + ")";
  }
  static std::string text(const std::string& s) { return s; }
  template <class Number>
  static std::string text(Number n) {
    return std::to_string(n);
  }
  template <class A, class B>
  static std::string list(const std::vector<A>& a, const std::vector<B>& b) {
    std::string s = "[";
    for (size_t i = 0; i < a.size(); ++i) {
      s += std::to_string(a[i]);
      if (&a != reinterpret_cast<const void*>(&b) && i < b.size()) s += ":" + std::to_string(b[i]);
      s += " ";
    }
    return s + "]";
  }
  std::vector<P> all_;
};

// The byte counts MPI_Get_elements is asked about.
std::vector<int64_t> byte_counts(uint64_t size) {
  std::vector<int64_t> v;
  const int64_t s = static_cast<int64_t>(size);
  for (int64_t b = 0; b <= std::min<int64_t>(3 * s + 3, 300); ++b) v.push_back(b);
  for (int64_t k = 1; k <= 5; ++k)
    for (int64_t j = -3; j <= 3; ++j)
      if (k * s + j >= 0) v.push_back(k * s + j);
  v.push_back(1000003);
  return v;
}

// A buffer holding count items of a type, origin at `base`.
struct Buffer {
  std::vector<unsigned char> bytes;
  int64_t origin = 0;  // index of the item origin in bytes
  unsigned char* base() { return bytes.data() + origin; }
};

bool make_buffer(const TypeMap& m, int64_t count, Buffer& b, unsigned seed) {
  if (m.size() == 0 || m.true_lb() > m.true_ub()) return false;
  __int128 lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, static_cast<__int128>(i) * m.extent() + m.true_lb());
    hi = std::max(hi, static_cast<__int128>(i) * m.extent() + m.true_ub());
  }
  // Open MPI copies a type it flags gap-free as count*size bytes from true_lb.
  hi = std::max(hi, static_cast<__int128>(m.true_lb()) + count * static_cast<__int128>(m.size()));
  if (hi - lo > (64 << 20)) return false;
  b.bytes.resize(static_cast<size_t>(hi - lo + 32));
  b.origin = static_cast<int64_t>(16 - lo);
  if (b.origin > (64 << 20) || b.origin < -(64 << 20)) return false;  // the items would lie far from the buffer start
  for (size_t i = 0; i < b.bytes.size(); ++i) b.bytes[i] = static_cast<unsigned char>((i * 131 + seed * 17 + 7) % 251);
  return true;
}

int64_t g_checks = 0;  // comparisons made, for the log

// Everything the two must agree on.
void compare(const P& t) {
  ASSERT_TRUE(t != nullptr);
  SCOPED_TRACE(t->desc);
  const TypeMap& m = *t->map;
  MPI_Aint lb, extent, tlb, textent;
  MPI_Count size;
  ASSERT_EQ(MPI_Type_get_extent(t->mpi, &lb, &extent), MPI_SUCCESS);
  ASSERT_EQ(MPI_Type_get_true_extent(t->mpi, &tlb, &textent), MPI_SUCCESS);
  ASSERT_EQ(MPI_Type_size_x(t->mpi, &size), MPI_SUCCESS);
  EXPECT_EQ(lb, m.lb());
  EXPECT_EQ(extent, m.extent());
  EXPECT_EQ(tlb, m.true_lb());
  EXPECT_EQ(textent, m.true_extent());
  ASSERT_EQ(static_cast<uint64_t>(size), m.size());

  // The description is consistent with itself.
  const std::vector<ckpt::mpi::Run> runs = m.runs();
  uint64_t run_bytes = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    run_bytes += runs[i].len;
    EXPECT_GT(runs[i].len, 0u);
    EXPECT_GE(runs[i].disp, m.true_lb());
    EXPECT_LE(runs[i].disp + static_cast<int64_t>(runs[i].len), m.true_ub());
    if (i > 0) {
      EXPECT_NE(runs[i - 1].disp + static_cast<int64_t>(runs[i - 1].len), runs[i].disp) << "unmerged";
    }
  }
  EXPECT_EQ(run_bytes, m.size());
  uint64_t elem_bytes = 0, elems = 0;
  bool one_type = true;
  const auto el = m.elements();
  for (const auto& e : el) {
    elem_bytes += e.size * e.count;
    elems += e.count;
    if (e.type != el.front().type || e.size != el.front().size) one_type = false;
  }
  EXPECT_EQ(elem_bytes, m.size());
  EXPECT_EQ(elems, m.element_count());
  EXPECT_EQ(m.homogeneous_type().has_value(), !el.empty() && one_type);
  std::vector<ckpt::mpi::Run> packed;
  ckpt::mpi::for_each_packed_run(m, 1, [&](int64_t d, uint64_t l) { packed.push_back({d, l}); });
  EXPECT_TRUE(packed == runs || (packed.size() == 1 && m.size() == 0)) << "one item packs as its runs";
  EXPECT_EQ(m.is_contiguous(), runs.size() == 1 && runs[0].disp == 0 && runs[0].len == m.size() &&
                                   static_cast<int64_t>(m.size()) == m.extent());

  // MPI_Get_elements / MPI_Get_count.
  for (int64_t bytes : byte_counts(m.size())) {
    MPI_Status st;
    MPI_Status_set_elements_x(&st, MPI_BYTE, bytes);
    int n = 0, c = 0;
    MPI_Count nx = 0;
    MPI_Get_elements(&st, t->mpi, &n);
    MPI_Get_elements_x(&st, t->mpi, &nx);
    MPI_Get_count(&st, t->mpi, &c);
    EXPECT_EQ(n, ckpt::mpi::get_elements_int(m, bytes)) << bytes << " bytes";
    EXPECT_EQ(nx, ckpt::mpi::get_elements(m, bytes)) << bytes << " bytes";
    EXPECT_EQ(c, ckpt::mpi::get_count(m, bytes)) << bytes << " bytes";
    g_checks += 3;
  }

  // MPI_Pack / MPI_Unpack.
  for (int count : {1, 2, 3}) {
    SCOPED_TRACE("count " + std::to_string(count));
    int psize = 0;
    ASSERT_EQ(MPI_Pack_size(count, t->mpi, MPI_COMM_WORLD, &psize), MPI_SUCCESS);
    const int64_t ours = ckpt::mpi::packed_size(m, count);
    ASSERT_EQ(ours, static_cast<int64_t>(m.size()) * count);
    EXPECT_GE(psize, ours);
    Buffer src;
    if (!make_buffer(m, count, src, 1)) {
      if (m.size() == 0) {
        char dummy[1];
        EXPECT_EQ(ckpt::mpi::pack(m, dummy, count, dummy), 0);
        EXPECT_EQ(ckpt::mpi::unpack(m, dummy, count, dummy), 0);
      }
      continue;  // else too large to try
    }
    std::vector<unsigned char> theirs(static_cast<size_t>(ours) + 16), mine(static_cast<size_t>(ours) + 16, 0);
    int pos = 0;
    ASSERT_EQ(MPI_Pack(src.base(), count, t->mpi, theirs.data(), static_cast<int>(theirs.size()), &pos,
                       MPI_COMM_WORLD),
              MPI_SUCCESS);
    ASSERT_EQ(pos, ours);
    ASSERT_EQ(ckpt::mpi::pack(m, src.base(), count, mine.data()), ours);
    EXPECT_TRUE(std::equal(theirs.begin(), theirs.begin() + ours, mine.begin())) << "MPI_Pack output differs";
    g_checks += ours;

    Buffer d1, d2;
    make_buffer(m, count, d1, 2);
    make_buffer(m, count, d2, 2);
    const std::vector<unsigned char> before = d1.bytes;
    pos = 0;
    ASSERT_EQ(MPI_Unpack(theirs.data(), static_cast<int>(ours), &pos, d1.base(), count, t->mpi, MPI_COMM_WORLD),
              MPI_SUCCESS);
    ASSERT_EQ(ckpt::mpi::unpack(m, theirs.data(), count, d2.base()), ours);
    EXPECT_TRUE(d1.bytes == d2.bytes) << "MPI_Unpack result differs";
    // Bytes outside the type map are untouched.
    std::vector<bool> in_map(d2.bytes.size(), false);
    ckpt::mpi::for_each_packed_run(m, count, [&](int64_t d, uint64_t l) {
      for (uint64_t k = 0; k < l; ++k) in_map[static_cast<size_t>(d2.origin + d + static_cast<int64_t>(k))] = true;
    });
    size_t touched = 0;
    for (size_t i = 0; i < in_map.size(); ++i)
      if (!in_map[i] && d2.bytes[i] != before[i]) ++touched;
    EXPECT_EQ(touched, 0u) << "bytes in the gaps changed";
  }
}

class TypeMapTest : public ::testing::Test {
 protected:
  Types ty;
  P c(BasicType b) { return ty.basic(b); }
};

// Every basic type but the bound markers, which end the enum.
static_assert(static_cast<int>(BasicType::lb_marker) == ckpt::mpi::kBasicTypeCount - 2);
constexpr auto kAllBasic = [] {
  std::array<BasicType, ckpt::mpi::kBasicTypeCount - 2> all{};
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<BasicType>(i);
  return all;
}();

TEST_F(TypeMapTest, PredefinedBasicTypes) {
  for (BasicType b : kAllBasic) {
    P t = c(b);
    compare(t);
    EXPECT_TRUE(t->map->is_contiguous()) << t->desc;
    EXPECT_EQ(t->map->homogeneous_type(), b);
    // The alignment Open MPI pads struct extents to: {char, T at 1}.
    compare(ty.structure({{1, 0, c(BasicType::char_)}, {1, 1, t}}));
    compare(ty.contiguous(3, t));
  }
}

TEST_F(TypeMapTest, PairTypesAreStructsWithPadding) {
  for (PairType p : kPairs) {
    P t = ty.pair(p);
    compare(t);
    EXPECT_TRUE(t->map->is_predefined());
    EXPECT_FALSE(t->map->homogeneous_type().has_value() && p != PairType::two_int);
    compare(ty.contiguous(2, t));
    compare(ty.dup(t));  // no longer predefined: counts two elements per pair
    compare(ty.structure({{1, 0, c(BasicType::char_)}, {2, 4, t}}));
    compare(ty.vector(3, 1, 2, t));
  }
  EXPECT_EQ(ty.pair(PairType::double_int)->map->elements().size(), 2u);
  EXPECT_EQ(ty.pair(PairType::two_int)->map->homogeneous_type(), BasicType::int_);
}

TEST_F(TypeMapTest, Markers) {
  compare(c(BasicType::lb_marker));
  compare(c(BasicType::ub_marker));
  P lbm = c(BasicType::lb_marker), ubm = c(BasicType::ub_marker), i = c(BasicType::int_), d = c(BasicType::double_);
  compare(ty.structure({{1, -4, lbm}, {1, 0, i}, {1, 12, ubm}}));
  compare(ty.structure({{0, -4, lbm}, {1, 0, i}}));
  compare(ty.structure({{1, 0, i}, {1, -4, lbm}, {1, -8, lbm}}));
  compare(ty.structure({{1, 0, d}, {1, -4, lbm}, {1, 3, c(BasicType::char_)}}));
  compare(ty.structure({{1, 0, ubm}, {1, 17, c(BasicType::char_)}}));
  P s = ty.structure({{1, 2, lbm}, {2, 4, i}, {1, 30, ubm}});
  compare(s);
  compare(ty.contiguous(3, s));
  compare(ty.structure({{1, 0, c(BasicType::char_)}, {1, 8, s}, {1, 100, d}}));
}

TEST_F(TypeMapTest, ContiguousAndZeroCounts) {
  P i = c(BasicType::int_);
  compare(ty.contiguous(0, i));
  compare(ty.contiguous(1, i));
  compare(ty.contiguous(1000, i));
  EXPECT_TRUE(ty.contiguous(1000, i)->map->is_contiguous());
  EXPECT_EQ(ty.contiguous(1000, i)->map->nodes().size(), 1u);
  compare(ty.vector(0, 2, 3, i));
  compare(ty.vector(2, 0, 3, i));
  compare(ty.hvector(0, 1, 8, i));
  compare(ty.indexed({}, {}, i));
  compare(ty.indexed({0, 0}, {1, 5}, i));
  compare(ty.indexed({0, 2, 0, 1}, {7, 1, 3, 3}, i));
  compare(ty.hindexed({0, 0}, {1, 5}, i));
  compare(ty.indexed_block(0, {1, 2}, i));
  compare(ty.indexed_block(2, {}, i));
  compare(ty.hindexed_block(0, {1, 2}, i));
  compare(ty.structure({}));
  compare(ty.structure({{0, 0, i}, {0, 8, c(BasicType::double_)}}));
  compare(ty.structure({{1, 0, c(BasicType::char_)}, {0, 8, c(BasicType::long_double)}}));
  compare(ty.structure({{0, 8, c(BasicType::long_double)}, {1, 0, c(BasicType::char_)}}));
  P empty = ty.contiguous(0, i);
  compare(ty.structure({{1, 0, c(BasicType::char_)}, {1, 7, empty}}));
  compare(ty.structure({{1, 0, c(BasicType::double_)}, {1, 7, empty}}));
  P rz = ty.resized(empty, 0, 8);  // size 0 but an extent
  compare(rz);
  compare(ty.contiguous(3, rz));
  compare(ty.vector(3, 1, 2, rz));  // Open MPI: true_lb INT64_MAX, true_ub INT64_MIN
  compare(ty.structure({{1, 0, c(BasicType::char_)}, {1, 100, rz}}));
}

TEST_F(TypeMapTest, Vectors) {
  P i = c(BasicType::int_), d = c(BasicType::double_), ch = c(BasicType::char_);
  compare(ty.vector(3, 2, 5, i));
  compare(ty.vector(2, 3, 3, i));
  compare(ty.vector(1, 3, 7, i));
  compare(ty.vector(3, 1, -2, i));
  compare(ty.vector(3, 2, -2, i));
  compare(ty.vector(3, 2, 1, i));  // overlapping blocks
  compare(ty.vector(3, 1, 0, i));
  compare(ty.vector(3, 1, -1, ch));
  compare(ty.hvector(2, 1, 3, d));  // unaligned stride: extent padded to 8
  compare(ty.hvector(2, 2, 3, d));
  compare(ty.hvector(2, 1, -3, d));
  compare(ty.hvector(3, 2, -20, i));
  compare(ty.hvector(3, 1, -1, i));  // stride -1 means "the extent" in Open MPI
  compare(ty.hvector(3, 2, -1, i));
  compare(ty.hvector(3, 1, -5, i));
  compare(ty.hvector(3, 1, 0, i));
  compare(ty.hvector(4, 3, 12, i));
  P v = ty.vector(4, 2, 3, d);
  compare(ty.vector(3, 2, 4, v));
  compare(ty.hvector(3, 1, -100, v));
}

TEST_F(TypeMapTest, IndexedAndNegativeDisplacements) {
  P i = c(BasicType::int_), d = c(BasicType::double_), s = c(BasicType::short_);
  compare(ty.indexed({1, 2, 3}, {0, 1, 10}, i));
  compare(ty.indexed({2, 1, 1}, {-4, 8, -10}, i));
  compare(ty.indexed({1, 1, 1}, {5, 3, 1}, d));  // decreasing: pack order is the type-map order
  compare(ty.indexed({2, 2}, {0, 1}, i));        // overlapping
  compare(ty.hindexed({1, 2}, {0, 3}, d));
  compare(ty.hindexed({1, 1, 2}, {-17, 5, 40}, s));
  compare(ty.hindexed({3, 1}, {24, -24}, d));
  compare(ty.indexed_block(2, {0, 2, 4, 9}, i));
  compare(ty.indexed_block(1, {-3, 7, -1}, d));
  compare(ty.hindexed_block(1, {0, 3}, d));
  compare(ty.hindexed_block(4, {0, 4}, i));  // 4 ints at byte 0 and at byte 4
  compare(ty.hindexed_block(4, {0, 16, 32}, i));
  compare(ty.hindexed_block(2, {-9, 100, 2}, s));
}

TEST_F(TypeMapTest, StructsWithGapsAndPadding) {
  P ch = c(BasicType::char_), i = c(BasicType::int_), d = c(BasicType::double_), ld = c(BasicType::long_double);
  compare(ty.structure({{1, 0, d}, {1, 8, ch}}));
  compare(ty.structure({{1, 0, i}, {1, 4, ch}}));
  compare(ty.structure({{1, 0, ld}, {1, 16, ch}}));
  compare(ty.structure({{1, 1, ch}, {1, 8, d}}));
  compare(ty.structure({{1, -3, ch}, {1, 8, d}}));
  compare(ty.structure({{1, 5, d}}));
  compare(ty.structure({{3, 0, ch}, {1, 4, i}, {2, 8, d}, {1, 32, ld}, {1, 48, ch}}));
  compare(ty.structure({{1, 48, ch}, {1, 32, ld}, {2, 8, d}, {1, 4, i}, {3, 0, ch}}));
  compare(ty.structure({{1, 0, ch}, {1, 1, ch}, {1, 2, ch}, {1, 3, i}}));  // same type, merged
  compare(ty.structure({{2, 0, i}, {1, 8, i}, {1, 16, i}}));
  compare(ty.structure({{1, 0, d}, {1, 8, ch}, {1, -1, ch}}));  // padding applied step by step
  P inner = ty.structure({{3, 0, ch}});
  compare(ty.structure({{1, 0, d}, {1, 8, inner}}));
  P s = ty.structure({{1, 0, ch}, {1, 4, i}, {1, 8, d}, {1, 16, ld}});
  compare(ty.contiguous(3, s));
  compare(ty.vector(3, 2, 3, s));  // vector of struct
  compare(ty.hvector(2, 1, -64, s));
  compare(ty.structure({{2, 0, s}, {1, 200, ch}, {1, -40, s}}));
}

TEST_F(TypeMapTest, ResizedIsSticky) {
  P i = c(BasicType::int_), ch = c(BasicType::char_), d = c(BasicType::double_);
  P r = ty.resized(i, -2, 10);
  compare(r);
  compare(ty.contiguous(2, r));
  compare(ty.vector(2, 1, -1, r));
  compare(ty.hvector(3, 1, -1, r));
  compare(ty.structure({{1, 0, r}, {1, 20, ch}}));
  compare(ty.structure({{1, 0, r}, {1, -20, ch}}));
  compare(ty.structure({{1, 0, ch}, {1, 20, r}}));
  compare(ty.structure({{1, 0, r}, {1, 16, d}}));
  P r2 = ty.resized(d, 0, 5);  // overlapping items
  compare(ty.structure({{1, 0, r2}, {1, 5, ch}}));
  compare(ty.structure({{1, 0, ch}, {1, 0, r2}}));
  compare(ty.contiguous(3, r2));
  compare(ty.resized(ty.vector(2, 1, 3, i), 4, 0));
  compare(ty.resized(i, 0, -8));  // negative extent
  compare(ty.contiguous(3, ty.resized(i, 0, -8)));
  compare(ty.resized(ty.resized(d, 3, 1), -1, 12));
  EXPECT_TRUE(ty.resized(ty.contiguous(2, i), 0, 8)->map->is_contiguous());
  EXPECT_FALSE(ty.resized(i, 0, 8)->map->is_contiguous());
  EXPECT_FALSE(ty.resized(i, -4, 8)->map->is_contiguous());
}

TEST_F(TypeMapTest, Subarrays) {
  P i = c(BasicType::int_), d = c(BasicType::double_);
  compare(ty.subarray({10}, {4}, {3}, true, i));
  compare(ty.subarray({4, 5}, {2, 3}, {1, 2}, true, i));
  compare(ty.subarray({4, 5}, {2, 3}, {1, 2}, false, i));
  compare(ty.subarray({3, 4, 5}, {2, 2, 3}, {1, 0, 2}, true, d));
  compare(ty.subarray({3, 4, 5}, {2, 2, 3}, {1, 0, 2}, false, d));
  compare(ty.subarray({2, 3, 2, 3}, {1, 2, 2, 1}, {1, 1, 0, 2}, true, i));
  P full = ty.subarray({4, 5}, {4, 5}, {0, 0}, true, i);
  compare(full);
  EXPECT_TRUE(full->map->is_contiguous());
  P r = ty.resized(i, -2, 10);
  compare(ty.subarray({4}, {2}, {0}, true, r));  // subarray of resized
  compare(ty.subarray({4, 5}, {2, 3}, {0, 1}, true, r));
  compare(ty.subarray({4, 5}, {2, 3}, {0, 1}, false, r));
  P s = ty.structure({{1, 0, c(BasicType::char_)}, {1, 8, d}});
  compare(ty.subarray({3, 3}, {2, 2}, {1, 1}, false, s));
  compare(ty.subarray({}, {}, {}, true, i));
  // Invalid: both refuse.
  EXPECT_TRUE(ty.subarray({4, 5}, {0, 3}, {0, 1}, true, i) == nullptr);
  EXPECT_TRUE(ty.subarray({4, 5}, {2, 6}, {0, 0}, true, i) == nullptr);
  EXPECT_TRUE(ty.subarray({4, 5}, {2, 3}, {3, 0}, true, i) == nullptr);
  EXPECT_TRUE(ty.subarray({4, 5}, {2, 3}, {-1, 0}, false, i) == nullptr);
}

TEST_F(TypeMapTest, DupKeepsEverythingButPredefined) {
  P i = c(BasicType::int_);
  P v = ty.vector(3, 2, 5, i);
  P dv = ty.dup(v);
  compare(dv);
  EXPECT_NE(dv->map->identity(), v->map->identity());
  compare(ty.dup(i));
  compare(ty.dup(ty.resized(i, 2, 3)));
  // A dup is another handle: struct blocks of it and of the original are not merged.
  compare(ty.structure({{1, 0, i}, {1, 4, ty.dup(i)}, {1, 8, i}}));
}

TEST_F(TypeMapTest, BadArgumentsFailOnBothSides) {
  P i = c(BasicType::int_);
  EXPECT_TRUE(ty.contiguous(-1, i) == nullptr);
  EXPECT_TRUE(ty.vector(-1, 1, 1, i) == nullptr);
  EXPECT_TRUE(ty.vector(2, -1, 1, i) == nullptr);
  EXPECT_TRUE(ty.hvector(-2, 1, 1, i) == nullptr);
  EXPECT_TRUE(ty.indexed({1, -1}, {0, 2}, i) == nullptr);
  EXPECT_TRUE(ty.hindexed({-1}, {0}, i) == nullptr);
  EXPECT_TRUE(ty.indexed_block(-1, {0}, i) == nullptr);
  EXPECT_TRUE(ty.structure({{-1, 0, i}}) == nullptr);
  // TypeMap-only checks.
  EXPECT_EQ(TypeMap::create_struct(std::vector<StructBlock>{{1, 0, nullptr}}).error(), ckpt::mpi::TypeError::type);
  const int one[1] = {1};
  const int two[2] = {1, 1};
  EXPECT_EQ(TypeMap::indexed(one, two, *i->map).error(), ckpt::mpi::TypeError::arg);
  EXPECT_EQ(ckpt::mpi::pack(*i->map, nullptr, 1, nullptr), -1);
  EXPECT_EQ(ckpt::mpi::packed_size(*i->map, -1), -1);
  EXPECT_EQ(ckpt::mpi::get_elements(*i->map, -1), ckpt::mpi::kUndefined);
  EXPECT_EQ(ckpt::mpi::kUndefined, MPI_UNDEFINED);
  P big = ty.contiguous(1 << 20, ty.contiguous(1 << 30, c(BasicType::long_double)));  // 2^54 bytes
  if (big) {
    EXPECT_EQ(ckpt::mpi::packed_size(*big->map, 1 << 30), -1);
    EXPECT_EQ(TypeMap::contiguous(int64_t{1} << 40, *big->map).error(), ckpt::mpi::TypeError::overflow);
  }
}

TEST_F(TypeMapTest, LargeMapsStayCompact) {
  P i = c(BasicType::int_);
  const auto t0 = std::chrono::steady_clock::now();
  P v = ty.vector(1000000, 1, 2, i);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->map->nodes().size(), 1u);
  compare(v);
  P s = ty.structure({{1, 0, c(BasicType::char_)}, {1, 4, i}, {1, 8, c(BasicType::double_)}});
  P vs = ty.hvector(1000000, 2, 40, s);  // a million blocks of two structs
  ASSERT_NE(vs, nullptr);
  EXPECT_LE(vs->map->nodes().size(), 8u);
  EXPECT_EQ(vs->map->runs().size(), 3000000u);  // the int+double of one struct and the next char merge
  P vv = ty.vector(100000, 1, 3, ty.vector(100000, 1, 2, c(BasicType::char_)));  // 10^10 blocks, never expanded
  ASSERT_NE(vv, nullptr);
  EXPECT_LE(vv->map->nodes().size(), 2u);
  MPI_Aint lb, ext;
  MPI_Type_get_extent(vv->mpi, &lb, &ext);
  EXPECT_EQ(ext, vv->map->extent());
  MPI_Status st;
  MPI_Status_set_elements_x(&st, MPI_BYTE, 12345);
  MPI_Count n;
  MPI_Get_elements_x(&st, vv->mpi, &n);
  EXPECT_EQ(n, ckpt::mpi::get_elements(*vv->map, 12345));
  std::vector<int> bl(1000000), disp(1000000);
  for (int k = 0; k < 1000000; ++k) {
    bl[k] = 1 + k % 3;
    disp[k] = 7 * k + k % 5;
  }
  P ix = ty.indexed(bl, disp, i);
  ASSERT_NE(ix, nullptr);
  compare(ix);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 30.0);
}

bool within(int64_t v, int64_t limit) { return v > -limit && v < limit; }

// Random nested types.
class Generator {
 public:
  // Every fifth seed is "wild": many zero counts, bound markers and empty types.
  Generator(Types& ty, unsigned seed) : ty_(ty), rng_(seed), wild_(seed % 5 == 0) {}

  P type(int depth) {
    if (depth <= 0 || pick(10) < 2) return leaf();
    P o = type(depth - 1);
    if (o == nullptr) return leaf();
    switch (pick(11)) {
      case 0: return ty_.contiguous(count(), o);
      case 1: return ty_.vector(count(), blocklen(), range(-4, 5), o);
      case 2: {
        MPI_Aint stride = pick(8) == 0 ? -1 : range(-24, 40);
        return ty_.hvector(count(), blocklen(), stride, o);
      }
      case 3: {
        std::vector<int> bl, d;
        blocks(&bl, d, -6, 10);
        return ty_.indexed(bl, d, o);
      }
      case 4: {
        std::vector<int> bl;
        std::vector<MPI_Aint> d;
        blocks(&bl, d, -30, 60);
        return ty_.hindexed(bl, d, o);
      }
      case 5: {
        std::vector<int> d;
        blocks(nullptr, d, -6, 10);
        return ty_.indexed_block(blocklen(), d, o);
      }
      case 6: {
        std::vector<MPI_Aint> d;
        blocks(nullptr, d, -30, 60);
        return ty_.hindexed_block(blocklen(), d, o);
      }
      case 7: {
        std::vector<Types::Field> f;
        P prev = o;
        MPI_Aint at = range(-16, 16);
        for (int k = 1 + pick(4); k > 0; --k) {
          P t = pick(3) == 0 ? prev : (pick(wild_ ? 3 : 6) == 0 ? marker() : type(depth - 1));
          if (t == nullptr) t = prev;
          const int bl = blocklen();
          f.push_back({bl, at, t});
          // Often right after the previous block (so blocks of one type merge).
          const int64_t ext = t->map->extent();
          at = pick(2) == 0 && within(ext, 4096) ? at + bl * ext : range(-32, 64);
          prev = t;
        }
        return ty_.structure(f);
      }
      case 8: {
        const int n = 1 + pick(3);
        std::vector<int> sizes, sub, start;
        for (int k = 0; k < n; ++k) {
          sizes.push_back(1 + pick(4));
          sub.push_back(1 + pick(sizes.back()));
          start.push_back(pick(sizes.back() - sub.back() + 1));
        }
        return ty_.subarray(sizes, sub, start, pick(2) == 0, o);
      }
      case 9: return ty_.resized(o, range(-8, 8), pick(8) == 0 ? range(-8, 0) : range(0, 40));
      default: return ty_.dup(o);
    }
  }

 private:
  P leaf() {
    if (wild_ && pick(6) == 0) {
      P empty = ty_.contiguous(0, ty_.basic(BasicType::int_));
      return pick(2) == 0 ? empty : ty_.resized(empty, range(-4, 4), range(0, 12));
    }
    if (pick(8) == 0) return ty_.pair(kPairs[pick(std::size(kPairs))]);
    static constexpr BasicType kCommon[] = {BasicType::char_,  BasicType::short_,      BasicType::int_,
                                            BasicType::double_, BasicType::long_double, BasicType::c_float_complex,
                                            BasicType::int64,   BasicType::float_};
    return ty_.basic(kCommon[pick(std::size(kCommon))]);
  }
  // count() blocks: a block length each (when bl is given) and a displacement in [lo, hi].
  template <class D>
  void blocks(std::vector<int>* bl, std::vector<D>& d, int lo, int hi) {
    for (int k = count(); k > 0; --k) {
      if (bl != nullptr) bl->push_back(blocklen());
      d.push_back(range(lo, hi));
    }
  }
  P marker() { return ty_.basic(pick(2) == 0 ? BasicType::lb_marker : BasicType::ub_marker); }
  int count() { return pick(wild_ ? 3 : 10) == 0 ? 0 : 1 + pick(4); }
  int blocklen() { return pick(wild_ ? 3 : 10) == 0 ? 0 : 1 + pick(3); }
  int range(int lo, int hi) { return lo + pick(static_cast<unsigned>(hi - lo + 1)); }
  int pick(size_t n) { return static_cast<int>(rng_() % n); }

  Types& ty_;
  std::mt19937 rng_;
  bool wild_;
};

TEST(TypeMapRandom, NestedTypesMatchOpenMpi) {
  const char* env = std::getenv("TYPEMAP_SEEDS");
  const unsigned kSeeds = env ? static_cast<unsigned>(std::atoi(env)) : 20000;
  int compared = 0;
  for (unsigned seed = 1; seed <= kSeeds; ++seed) {
    Types ty;
    Generator gen(ty, seed);
    P t = gen.type(1 + static_cast<int>(seed % 4));
    if (t == nullptr) continue;
    const TypeMap& m = *t->map;
    if (m.size() > (1u << 16) || !within(m.extent(), 1 << 20) ||
        (m.true_lb() <= m.true_ub() && !within(m.true_extent(), 1 << 20)))
      continue;
    SCOPED_TRACE("seed " + std::to_string(seed));
    if (std::getenv("TYPEMAP_VERBOSE")) std::printf("%u %s size %lu\n", seed, t->desc.c_str(), (unsigned long)m.size());
    compare(t);
    ++compared;
    if (::testing::Test::HasFailure()) break;  // the first failure is the readable one
  }
  EXPECT_GT(compared, static_cast<int>(kSeeds) / 2);
  std::printf("compared %d random types (%lld checks in all tests so far)\n", compared, static_cast<long long>(g_checks));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  MPI_Init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
