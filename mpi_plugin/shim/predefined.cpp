// The predefined objects of Open MPI's ABI: mpi.h names them as the
// addresses of ompi_mpi_* globals, whose sizes (from the real
// libmpi.so.40's symbol table) must match for programs linked with copy
// relocations.
#include "mpi_plugin/shim/shim.hpp"

namespace {

template <class Obj, size_t Size>
struct Padded {
    static_assert(sizeof(Obj) <= Size);
    Obj obj;
    char pad[Size - sizeof(Obj)];
};

}  // namespace

// The struct names mpi.h declares for the predefined objects.
struct ompi_predefined_communicator_t : Padded<ompi_communicator_t, 512> {};
struct ompi_predefined_group_t : Padded<ompi_group_t, 256> {};
struct ompi_predefined_request_t : Padded<ompi_request_t, 256> {};
struct ompi_predefined_message_t : Padded<ompi_message_t, 256> {};
struct ompi_predefined_op_t : Padded<ompi_op_t, 2048> {};
struct ompi_predefined_datatype_t : Padded<ompi_datatype_t, 512> {};
struct ompi_predefined_errhandler_t : Padded<ompi_errhandler_t, 1024> {};
struct ompi_predefined_win_t : Padded<ompi_win_t, 512> {};
struct ompi_predefined_file_t : Padded<ompi_file_t, 1536> {};
struct ompi_predefined_info_t : Padded<ompi_info_t, 256> {};

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

namespace {

CommData g_world, g_self, g_comm_null;
GroupData g_group_empty{0, MPI_UNDEFINED};
ErrhandlerData g_fatal{nullptr, 0}, g_return{nullptr, 1};
InfoData g_info_env;

}  // namespace

extern "C" {

ompi_predefined_communicator_t ompi_mpi_comm_world = {{{kCommWorld, &g_world}, {}}};
ompi_predefined_communicator_t ompi_mpi_comm_self = {{{kCommSelf, &g_self}, {}}};
ompi_predefined_communicator_t ompi_mpi_comm_null = {{{kCommNull, &g_comm_null}, {}}};
ompi_predefined_group_t ompi_mpi_group_empty = {{{kGroupEmpty, &g_group_empty}, {}}};
ompi_predefined_group_t ompi_mpi_group_null = {{{kGroupNull, nullptr}, {}}};
ompi_predefined_request_t ompi_request_null = {{{kRequestNull, nullptr}, {}}};
ompi_predefined_message_t ompi_message_null = {{{0, nullptr}, {}}};
ompi_predefined_message_t ompi_message_no_proc = {{{1, nullptr}, {}}};
ompi_predefined_errhandler_t ompi_mpi_errhandler_null = {{{0, nullptr}, {}}};
ompi_predefined_errhandler_t ompi_mpi_errors_are_fatal = {{{1, &g_fatal}, {}}};
ompi_predefined_errhandler_t ompi_mpi_errors_return = {{{2, &g_return}, {}}};
ompi_predefined_win_t ompi_mpi_win_null = {{{0, nullptr}, {}}};
ompi_predefined_file_t ompi_mpi_file_null = {{{0, nullptr}, {}}};
ompi_predefined_info_t ompi_mpi_info_null = {{{0, nullptr}, {}}};
ompi_predefined_info_t ompi_mpi_info_env = {{{1, &g_info_env}, {}}};

#define CKPT_OP(sym, name) ompi_predefined_op_t ompi_mpi_op_##sym = {{{kOpBase + static_cast<uint64_t>(PredefOp::name), nullptr}, {}}};
CKPT_OP(null, Null)
CKPT_OP(max, Max)
CKPT_OP(min, Min)
CKPT_OP(sum, Sum)
CKPT_OP(prod, Prod)
CKPT_OP(land, Land)
CKPT_OP(band, Band)
CKPT_OP(lor, Lor)
CKPT_OP(bor, Bor)
CKPT_OP(lxor, Lxor)
CKPT_OP(bxor, Bxor)
CKPT_OP(maxloc, Maxloc)
CKPT_OP(minloc, Minloc)
CKPT_OP(replace, Replace)
CKPT_OP(no_op, NoOp)
#undef CKPT_OP

// Datatypes: ids in the order of predefined_types.def.
enum PredefTypeIndex : uint64_t {
#define X(sym, name, size, extent, off2, size2) kType_##sym,
#include "mpi_plugin/common/predefined_types.def"
#undef X
};
#define X(sym, name, size, extent, off2, size2) \
    ompi_predefined_datatype_t ompi_mpi_##sym = {{{kTypeBase + kType_##sym, nullptr}, {}}};
#include "mpi_plugin/common/predefined_types.def"
#undef X

// Fortran's view of "ignore the status".
MPI_Fint* MPI_F_STATUS_IGNORE = nullptr;
MPI_Fint* MPI_F_STATUSES_IGNORE = nullptr;

}  // extern "C"

namespace ckpt::mpi::shim {

namespace {

struct PredefType {
    ompi_datatype_t* obj;
    const char* name;
    uint64_t size, extent, off2, size2;
};

const PredefType kPredefTypes[] = {
#define X(sym, mpiname, size, extent, off2, size2) {&ompi_mpi_##sym.obj, #mpiname, size, extent, off2, size2},
#include "mpi_plugin/common/predefined_types.def"
#undef X
};

}  // namespace

void init_predefined() {
    for (const PredefType& p : kPredefTypes) {
        auto* d = new TypeData(predefined_type_map(static_cast<unsigned>(&p - kPredefTypes), p.size, p.extent, p.off2, p.size2));
        d->committed = true;
        d->predefined = true;
        d->name = p.name;
        p.obj->d = d;
        register_type(p.obj);
    }
    g_world.name = "MPI_COMM_WORLD";
    g_self.name = "MPI_COMM_SELF";
}

MPI_Comm make_comm(uint64_t id, int rank, int size) {
    auto* c = new ompi_communicator_t;
    c->id = id;
    c->d = new CommData;
    c->d->rank = rank;
    c->d->size = size;
    return c;
}

bool valid_comm(MPI_Comm c) { return c && c != MPI_COMM_NULL && c->d; }
bool valid_type(MPI_Datatype t) { return t && t != MPI_DATATYPE_NULL && t->d; }
CommData& comm_data(MPI_Comm c) { return *c->d; }
TypeData& type_data(MPI_Datatype t) { return *t->d; }

}  // namespace ckpt::mpi::shim
