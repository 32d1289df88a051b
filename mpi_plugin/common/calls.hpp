// The calls the shim sends to the proxy, and the ids of predefined MPI
// objects. Shared by the shim (the application's libmpi.so.40) and the
// proxy (real Open MPI); neither includes the other's MPI header here.
#pragma once

#include <cstdint>

namespace ckpt::mpi {

// One list: the enum and the names in messages come from it.
#define CKPT_MPI_CALLS(X) \
    X(Init)               \
    X(Finalize)           \
    X(Abort)              \
    X(Send)               \
    X(Recv)               \
    X(Probe)              \
    X(Complete)           \
    X(Cancel)             \
    X(RequestFree)        \
    X(Collective)         \
    X(CommCreate)         \
    X(CommFree)           \
    X(CommQuery)          \
    X(GroupCreate)        \
    X(GroupFree)          \
    X(GroupQuery)         \
    X(TypeCreate)         \
    X(TypeFree)           \
    X(OpCreate)           \
    X(OpFree)

enum class Call : uint32_t {
#define CKPT_MPI_ENUM(name) name,
    CKPT_MPI_CALLS(CKPT_MPI_ENUM)
#undef CKPT_MPI_ENUM
        Count
};

inline const char* call_name(Call c) {
    static const char* const names[] = {
#define CKPT_MPI_NAME(name) #name,
        CKPT_MPI_CALLS(CKPT_MPI_NAME)
#undef CKPT_MPI_NAME
    };
    const auto i = static_cast<uint32_t>(c);
    return i < static_cast<uint32_t>(Call::Count) ? names[i] : "?";
}

// Send modes (args of Call::Send).
enum SendMode : int64_t { kSendStandard = 0, kSendSync = 1, kSendReady = 2, kSendBuffered = 3 };

// Collectives (Call::Collective, args[0]).
enum class Coll : int64_t {
    Barrier,
    Bcast,
    Reduce,
    Allreduce,
    Gather,
    Gatherv,
    Scatter,
    Scatterv,
    Allgather,
    Allgatherv,
    Alltoall,
    Alltoallv,
    ReduceScatter,
    ReduceScatterBlock,
    Scan,
    Exscan,
    Count
};

// The arguments of Call::Collective. Arrays (bytes per rank, as int64)
// and buffers are channel offsets; a reduction's buffers are offsets that
// may lie before their block (the type's layout starts at its true lower
// bound).
enum CollArg {
    kCKind,
    kCComm,
    kCRoot,
    kCOp,
    kCType,
    kCCount,
    kCRequest,
    kCSendOff,
    kCSendBytes,
    kCRecvOff,
    kCRecvBytes,
    kCInPlace,
    kCSendCounts,
    kCSendDispls,
    kCRecvCounts,
    kCRecvDispls,
    kCArgs
};

// The words the proxy writes for each completed operation (an MPI_Status).
enum StatusWord { kStSource, kStTag, kStError, kStCancelled, kStBytes, kStDone, kStWords };

// Communicator constructors (Call::CommCreate, args[0]).
enum class CommCtor : int64_t { Dup, Split, SplitType, Create, CartCreate, CartSub, GraphCreate, DistGraphAdjacent, CreateGroup, Count };

// Queries on a real communicator (Call::CommQuery, args[0]).
enum class CommQ : int64_t {
    Compare,
    CartCoords,
    CartRank,
    CartShift,
    CartGet,
    Cartdim,
    Topo,
    GraphdimsGet,
    GraphGet,
    GraphNeighborsCount,
    GraphNeighbors,
    DistGraphNeighborsCount,
    DistGraphNeighbors,
    DimsCreate,  // not of a communicator: MPI_Dims_create of the real library
    Count
};

// Group constructors and queries (Call::GroupCreate / GroupQuery, args[0]).
enum class GroupCtor : int64_t { OfComm, Incl, Excl, RangeIncl, RangeExcl, Union, Intersection, Difference, Count };
enum class GroupQ : int64_t { Translate, Compare, Count };

// Datatype constructors (Call::TypeCreate, args[0]).
enum class TypeCtor : int64_t {
    Contiguous,
    Vector,
    Hvector,
    Indexed,
    Hindexed,
    IndexedBlock,
    HindexedBlock,
    Struct,
    Subarray,
    Resized,
    Dup,
    Darray,
    Count
};

// Request completion (Call::Complete, args[0]).
enum class CompleteMode : int64_t { WaitAll, WaitAny, WaitSome, TestAll, TestAny, TestSome, Count };

// Object kinds in the proxy's tables and the creation log.
enum class ObjKind : uint32_t { Comm = 1, Group = 2, Datatype = 3, Op = 4, Request = 5 };

// Ids of predefined objects; the shim numbers every other object from
// kFirstUserId up. Datatype ids are kTypeBase + the BasicType value.
inline constexpr uint64_t kCommNull = 0;
inline constexpr uint64_t kCommWorld = 1;
inline constexpr uint64_t kCommSelf = 2;
inline constexpr uint64_t kGroupNull = 10;
inline constexpr uint64_t kGroupEmpty = 11;
inline constexpr uint64_t kRequestNull = 20;
inline constexpr uint64_t kOpBase = 100;   // + PredefOp
inline constexpr uint64_t kTypeBase = 200;  // + predefined type index
inline constexpr uint64_t kFirstUserId = 1000;

enum class PredefOp : uint64_t { Null, Max, Min, Sum, Prod, Land, Band, Lor, Bor, Lxor, Bxor, Maxloc, Minloc, Replace, NoOp, Count };

// The result slots of Call::Init.
enum InitResult : int {
    kInitRc = 0,
    kInitRank,
    kInitSize,
    kInitTagUb,
    kInitUniverse,
    kInitAppnum,
    kInitProvided,
    kInitWtimeGlobal,
};

}  // namespace ckpt::mpi
