// Communicators, groups, topologies, attributes, error handlers and info
// objects. Whatever involves other ranks or the real library's answer goes
// to the proxy; attributes, names, error handlers and info objects are the
// application's own data and stay in the shim.
#include "mpi_plugin/shim/shim.hpp"

#include <algorithm>
#include <cstring>

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

namespace {

// Runs a communicator constructor at the proxy; `args` follow the ctor's
// header. Sets *out to the new communicator or MPI_COMM_NULL.
int create_comm(CommCtor ctor, MPI_Comm parent, const std::vector<int64_t>& args, MPI_Comm* out, const char* fn, CallFrame* prepared = nullptr) {
    if (int e = comm_call_error(parent, fn)) return e;
    const uint64_t id = new_id();
    CallFrame local(Call::CommCreate);
    CallFrame& c = prepared ? *prepared : local;
    c.arg(static_cast<int64_t>(ctor)).arg(static_cast<int64_t>(parent->id)).arg(static_cast<int64_t>(id));
    for (int64_t a : args) c.arg(a);
    const int rc = c.run();
    if (rc != MPI_SUCCESS) {
        *out = MPI_COMM_NULL;
        return handle_error(parent, rc, fn);
    }
    if (c.result(3)) {  // this rank is not in the new communicator
        *out = MPI_COMM_NULL;
        return MPI_SUCCESS;
    }
    MPI_Comm comm = make_comm(id, static_cast<int>(c.result(1)), static_cast<int>(c.result(2)));
    comm->d->errhandler = parent->d->errhandler;
    comm->d->topo = static_cast<int>(c.result(4));
    *out = comm;
    return MPI_SUCCESS;
}

MPI_Group make_group(uint64_t id, int size, int rank) {
    auto* g = new ompi_group_t;
    g->id = id;
    g->d = new GroupData{size, rank};
    return g;
}

// Runs a group constructor at the proxy on groups (or a communicator) a and
// b; `extra` follows them. `prepared`: a frame with arrays already put.
int create_group(GroupCtor ctor, uint64_t a, uint64_t b, const std::vector<int64_t>& extra, MPI_Group* out, const char* fn,
                 CallFrame* prepared = nullptr) {
    require_init(fn);
    const uint64_t id = new_id();
    CallFrame local(Call::GroupCreate);
    CallFrame& c = prepared ? *prepared : local;
    c.arg(static_cast<int64_t>(ctor)).arg(static_cast<int64_t>(id)).arg(static_cast<int64_t>(a)).arg(static_cast<int64_t>(b));
    for (int64_t x : extra) c.arg(x);
    const int rc = c.run();
    if (rc != MPI_SUCCESS) return rc;
    if (c.result(3)) {
        *out = MPI_GROUP_EMPTY;
        return MPI_SUCCESS;
    }
    *out = make_group(id, static_cast<int>(c.result(1)), static_cast<int>(c.result(2)));
    return MPI_SUCCESS;
}

// Copies n of the proxy's int64 answers into an int array of the caller's.
void copy_ints(const int64_t* words, int n, int* to) {
    for (int i = 0; i < n; ++i) to[i] = static_cast<int>(words[i]);
}

// A query of a real communicator; results land in `out` (int64 words).
int comm_query(CommQ q, MPI_Comm comm, const std::vector<int64_t>& args, std::vector<int64_t>& out, size_t nout, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    CallFrame c(Call::CommQuery);
    const uint64_t res = c.space(std::max<size_t>(nout, 1) * sizeof(int64_t));
    c.arg(static_cast<int64_t>(q)).arg(static_cast<int64_t>(comm->id)).arg(static_cast<int64_t>(res));
    for (int64_t a : args) c.arg(a);
    const int rc = c.run();
    out.assign(static_cast<const int64_t*>(at(res)), static_cast<const int64_t*>(at(res)) + nout);
    return handle_error(comm, rc, fn);
}

// A query whose n answers are the ints the MPI function gives back in `to`.
int query_ints(CommQ q, MPI_Comm comm, const std::vector<int64_t>& args, int n, int* to, const char* fn) {
    std::vector<int64_t> out;
    const int rc = comm_query(q, comm, args, out, static_cast<size_t>(std::max(n, 0)), fn);
    copy_ints(out.data(), static_cast<int>(out.size()), to);  // none when the query was refused
    return rc;
}

// What the predefined copy callbacks do: nothing, or copy the value itself.
int copy_nothing(int* flag) {
    *flag = 0;
    return MPI_SUCCESS;
}
int copy_value(void* in, void* out, int* flag) {
    *static_cast<void**>(out) = in;
    *flag = 1;
    return MPI_SUCCESS;
}

}  // namespace

// ---- keyvals and attributes of every kind of object ------------------------------------
namespace ckpt::mpi::shim {

int create_keyval(const Keyval& k, int* keyval) {
    Shim& s = S();
    std::lock_guard lock(s.keyval_mu);
    *keyval = s.next_keyval++;
    s.keyvals[*keyval] = std::make_unique<Keyval>(k);
    return MPI_SUCCESS;
}

int free_keyval(int* keyval) {
    Shim& s = S();
    std::lock_guard lock(s.keyval_mu);
    s.keyvals.erase(*keyval);
    *keyval = MPI_KEYVAL_INVALID;
    return MPI_SUCCESS;
}

std::optional<Keyval> find_keyval(int keyval) {
    Shim& s = S();
    std::lock_guard lock(s.keyval_mu);
    auto it = s.keyvals.find(keyval);
    if (it == s.keyvals.end()) return std::nullopt;
    return *it->second;
}

void get_attr(const AttrMap& attrs, int keyval, void* value, int* flag) {
    auto it = attrs.find(keyval);
    *flag = it != attrs.end();
    if (*flag) *static_cast<void**>(value) = it->second;
}

}  // namespace ckpt::mpi::shim

extern "C" {

int PMPI_Comm_rank(MPI_Comm comm, int* rank) {
    if (int e = comm_call_error(comm, "MPI_Comm_rank")) return e;
    *rank = comm->d->rank;
    return MPI_SUCCESS;
}

int PMPI_Comm_size(MPI_Comm comm, int* size) {
    if (int e = comm_call_error(comm, "MPI_Comm_size")) return e;
    *size = comm->d->size;
    return MPI_SUCCESS;
}

int PMPI_Comm_dup(MPI_Comm comm, MPI_Comm* out) {
    const int rc = create_comm(CommCtor::Dup, comm, {}, out, "MPI_Comm_dup");
    if (rc == MPI_SUCCESS && *out != MPI_COMM_NULL) copy_attributes(comm, *out);
    return rc;
}
int PMPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info, MPI_Comm* out) { return PMPI_Comm_dup(comm, out); }
int PMPI_Comm_idup(MPI_Comm comm, MPI_Comm* out, MPI_Request* r) {
    *r = MPI_REQUEST_NULL;
    return PMPI_Comm_dup(comm, out);
}

int PMPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm* out) {
    return create_comm(CommCtor::Split, comm, {color, key}, out, "MPI_Comm_split");
}

int PMPI_Comm_split_type(MPI_Comm comm, int type, int key, MPI_Info, MPI_Comm* out) {
    return create_comm(CommCtor::SplitType, comm, {type, key}, out, "MPI_Comm_split_type");
}

int PMPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm* out) {
    return create_comm(CommCtor::Create, comm, {static_cast<int64_t>(group->id)}, out, "MPI_Comm_create");
}

int PMPI_Comm_create_group(MPI_Comm comm, MPI_Group group, int tag, MPI_Comm* out) {
    return create_comm(CommCtor::CreateGroup, comm, {static_cast<int64_t>(group->id), tag}, out, "MPI_Comm_create_group");
}

int PMPI_Comm_free(MPI_Comm* comm) {
    require_init("MPI_Comm_free");
    if (!valid_comm(*comm) || *comm == MPI_COMM_WORLD || *comm == MPI_COMM_SELF) return handle_error(*comm, MPI_ERR_COMM, "MPI_Comm_free");
    delete_attributes(*comm);
    CallFrame c(Call::CommFree);
    c.arg(static_cast<int64_t>((*comm)->id));
    const int rc = c.run();
    delete (*comm)->d;
    delete *comm;
    *comm = MPI_COMM_NULL;
    return rc;
}

int PMPI_Comm_disconnect(MPI_Comm* comm) { return PMPI_Comm_free(comm); }

int PMPI_Comm_compare(MPI_Comm a, MPI_Comm b, int* result) {
    std::vector<int64_t> out;
    if (!valid_comm(b)) return handle_error(a, MPI_ERR_COMM, "MPI_Comm_compare");
    const int rc = comm_query(CommQ::Compare, a, {static_cast<int64_t>(b->id)}, out, 1, "MPI_Comm_compare");
    *result = static_cast<int>(out[0]);
    return rc;
}

int PMPI_Comm_test_inter(MPI_Comm comm, int* flag) {
    if (int e = comm_call_error(comm, "MPI_Comm_test_inter")) return e;
    *flag = comm->d->inter;
    return MPI_SUCCESS;
}

int PMPI_Comm_set_name(MPI_Comm comm, const char* name) {
    if (int e = comm_call_error(comm, "MPI_Comm_set_name")) return e;
    comm->d->name = std::string(name).substr(0, MPI_MAX_OBJECT_NAME - 1);
    return MPI_SUCCESS;
}

int PMPI_Comm_get_name(MPI_Comm comm, char* name, int* len) {
    if (int e = comm_call_error(comm, "MPI_Comm_get_name")) return e;
    snprintf(name, MPI_MAX_OBJECT_NAME, "%s", comm->d->name.c_str());
    *len = static_cast<int>(strlen(name));
    return MPI_SUCCESS;
}

// ---- groups -------------------------------------------------------------------------
int PMPI_Comm_group(MPI_Comm comm, MPI_Group* group) {
    if (int e = comm_call_error(comm, "MPI_Comm_group")) return e;
    return create_group(GroupCtor::OfComm, comm->id, 0, {}, group, "MPI_Comm_group");
}

int PMPI_Group_size(MPI_Group g, int* size) {
    if (!g || g == MPI_GROUP_NULL) return MPI_ERR_GROUP;
    *size = g->d->size;
    return MPI_SUCCESS;
}

int PMPI_Group_rank(MPI_Group g, int* rank) {
    if (!g || g == MPI_GROUP_NULL) return MPI_ERR_GROUP;
    *rank = g->d->rank;
    return MPI_SUCCESS;
}

int PMPI_Group_free(MPI_Group* g) {
    if (!*g || *g == MPI_GROUP_NULL) return MPI_ERR_GROUP;
    if (*g != MPI_GROUP_EMPTY) {
        CallFrame c(Call::GroupFree);
        c.arg(static_cast<int64_t>((*g)->id));
        c.run();
        delete (*g)->d;
        delete *g;
    }
    *g = MPI_GROUP_NULL;
    return MPI_SUCCESS;
}

namespace {
// A group of g's ranks chosen by a list of n ints (ranks or rank ranges).
int group_ranks(GroupCtor ctor, MPI_Group g, int n, const int* ranks, MPI_Group* out, const char* fn) {
    require_init(fn);  // before the frame takes a slot of the channel
    CallFrame c(Call::GroupCreate);
    const uint64_t off = put_words(c, ranks, n);
    return create_group(ctor, g->id, 0, {n, static_cast<int64_t>(off)}, out, fn, &c);
}
}  // namespace

int PMPI_Group_incl(MPI_Group g, int n, const int* ranks, MPI_Group* out) { return group_ranks(GroupCtor::Incl, g, n, ranks, out, "MPI_Group_incl"); }
int PMPI_Group_excl(MPI_Group g, int n, const int* ranks, MPI_Group* out) { return group_ranks(GroupCtor::Excl, g, n, ranks, out, "MPI_Group_excl"); }
int PMPI_Group_range_incl(MPI_Group g, int n, int ranges[][3], MPI_Group* out) {
    return group_ranks(GroupCtor::RangeIncl, g, 3 * n, &ranges[0][0], out, "MPI_Group_range_incl");
}
int PMPI_Group_range_excl(MPI_Group g, int n, int ranges[][3], MPI_Group* out) {
    return group_ranks(GroupCtor::RangeExcl, g, 3 * n, &ranges[0][0], out, "MPI_Group_range_excl");
}
int PMPI_Group_union(MPI_Group a, MPI_Group b, MPI_Group* out) { return create_group(GroupCtor::Union, a->id, b->id, {}, out, "MPI_Group_union"); }
int PMPI_Group_intersection(MPI_Group a, MPI_Group b, MPI_Group* out) {
    return create_group(GroupCtor::Intersection, a->id, b->id, {}, out, "MPI_Group_intersection");
}
int PMPI_Group_difference(MPI_Group a, MPI_Group b, MPI_Group* out) {
    return create_group(GroupCtor::Difference, a->id, b->id, {}, out, "MPI_Group_difference");
}

int PMPI_Group_translate_ranks(MPI_Group a, int n, const int* ranks1, MPI_Group b, int* ranks2) {
    require_init("MPI_Group_translate_ranks");
    CallFrame c(Call::GroupQuery);
    const uint64_t in = put_words(c, ranks1, n);
    const uint64_t out = c.space(static_cast<uint64_t>(std::max(n, 0)) * sizeof(int64_t));
    c.arg(static_cast<int64_t>(GroupQ::Translate)).arg(static_cast<int64_t>(a->id)).arg(static_cast<int64_t>(b->id)).arg(n);
    c.arg(static_cast<int64_t>(in)).arg(static_cast<int64_t>(out));
    const int rc = c.run();
    copy_ints(static_cast<const int64_t*>(at(out)), n, ranks2);
    return rc;
}

int PMPI_Group_compare(MPI_Group a, MPI_Group b, int* result) {
    require_init("MPI_Group_compare");
    CallFrame c(Call::GroupQuery);
    c.arg(static_cast<int64_t>(GroupQ::Compare)).arg(static_cast<int64_t>(a->id)).arg(static_cast<int64_t>(b->id));
    const int rc = c.run();
    *result = static_cast<int>(c.result(1));
    return rc;
}

// ---- topologies -------------------------------------------------------------------------
int PMPI_Cart_create(MPI_Comm comm, int ndims, const int dims[], const int periods[], int reorder, MPI_Comm* out) {
    CallFrame c(Call::CommCreate);
    const uint64_t d = put_words(c, dims, ndims), p = put_words(c, periods, ndims);
    return create_comm(CommCtor::CartCreate, comm, {ndims, static_cast<int64_t>(d), static_cast<int64_t>(p), reorder}, out, "MPI_Cart_create",
                       &c);
}

int PMPI_Cart_sub(MPI_Comm comm, const int remain[], MPI_Comm* out) {
    std::vector<int64_t> dim;
    if (int rc = comm_query(CommQ::Cartdim, comm, {}, dim, 1, "MPI_Cart_sub")) return rc;
    CallFrame c(Call::CommCreate);
    const uint64_t r = put_words(c, remain, static_cast<int>(dim[0]));
    return create_comm(CommCtor::CartSub, comm, {static_cast<int64_t>(r)}, out, "MPI_Cart_sub", &c);
}

int PMPI_Graph_create(MPI_Comm comm, int nnodes, const int index[], const int edges[], int reorder, MPI_Comm* out) {
    CallFrame c(Call::CommCreate);
    const int nedges = nnodes > 0 ? index[nnodes - 1] : 0;
    const uint64_t i = put_words(c, index, nnodes), e = put_words(c, edges, nedges);
    return create_comm(CommCtor::GraphCreate, comm, {nnodes, static_cast<int64_t>(i), nedges, static_cast<int64_t>(e), reorder}, out,
                       "MPI_Graph_create", &c);
}

int PMPI_Dist_graph_create_adjacent(MPI_Comm comm, int indegree, const int sources[], const int sourceweights[], int outdegree,
                                    const int destinations[], const int destweights[], MPI_Info, int reorder, MPI_Comm* out) {
    CallFrame c(Call::CommCreate);
    const bool unweighted = sourceweights == MPI_UNWEIGHTED || destweights == MPI_UNWEIGHTED;
    const uint64_t s = put_words(c, sources, indegree), d = put_words(c, destinations, outdegree);
    const uint64_t sw = put_words(c, unweighted ? nullptr : sourceweights, indegree), dw = put_words(c, unweighted ? nullptr : destweights, outdegree);
    return create_comm(CommCtor::DistGraphAdjacent, comm,
                       {indegree, static_cast<int64_t>(s), static_cast<int64_t>(sw), outdegree, static_cast<int64_t>(d), static_cast<int64_t>(dw),
                        unweighted ? 1 : 0, reorder},
                       out, "MPI_Dist_graph_create_adjacent", &c);
}

int PMPI_Topo_test(MPI_Comm comm, int* status) {
    if (int e = comm_call_error(comm, "MPI_Topo_test")) return e;
    *status = comm->d->topo;
    return MPI_SUCCESS;
}

int PMPI_Cartdim_get(MPI_Comm comm, int* ndims) { return query_ints(CommQ::Cartdim, comm, {}, 1, ndims, "MPI_Cartdim_get"); }

int PMPI_Cart_get(MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[]) {
    std::vector<int64_t> out;
    const int rc = comm_query(CommQ::CartGet, comm, {maxdims}, out, static_cast<size_t>(3 * maxdims), "MPI_Cart_get");
    copy_ints(out.data(), maxdims, dims);
    copy_ints(out.data() + maxdims, maxdims, periods);
    copy_ints(out.data() + 2 * maxdims, maxdims, coords);
    return rc;
}

int PMPI_Cart_coords(MPI_Comm comm, int rank, int maxdims, int coords[]) {
    return query_ints(CommQ::CartCoords, comm, {rank, maxdims}, maxdims, coords, "MPI_Cart_coords");
}

int PMPI_Cart_rank(MPI_Comm comm, const int coords[], int* rank) {
    std::vector<int64_t> dim;
    if (int rc = comm_query(CommQ::Cartdim, comm, {}, dim, 1, "MPI_Cart_rank")) return rc;
    std::vector<int64_t> args;
    for (int i = 0; i < dim[0]; ++i) args.push_back(coords[i]);
    return query_ints(CommQ::CartRank, comm, args, 1, rank, "MPI_Cart_rank");
}

int PMPI_Cart_shift(MPI_Comm comm, int direction, int disp, int* source, int* dest) {
    std::vector<int64_t> out;
    const int rc = comm_query(CommQ::CartShift, comm, {direction, disp}, out, 2, "MPI_Cart_shift");
    *source = static_cast<int>(out[0]);
    *dest = static_cast<int>(out[1]);
    return rc;
}

int PMPI_Graphdims_get(MPI_Comm comm, int* nnodes, int* nedges) {
    std::vector<int64_t> out;
    const int rc = comm_query(CommQ::GraphdimsGet, comm, {}, out, 2, "MPI_Graphdims_get");
    *nnodes = static_cast<int>(out[0]);
    *nedges = static_cast<int>(out[1]);
    return rc;
}

int PMPI_Graph_get(MPI_Comm comm, int maxindex, int maxedges, int index[], int edges[]) {
    std::vector<int64_t> out;
    const int rc = comm_query(CommQ::GraphGet, comm, {maxindex, maxedges}, out, static_cast<size_t>(maxindex + maxedges), "MPI_Graph_get");
    copy_ints(out.data(), maxindex, index);
    copy_ints(out.data() + maxindex, maxedges, edges);
    return rc;
}

int PMPI_Graph_neighbors_count(MPI_Comm comm, int rank, int* n) {
    return query_ints(CommQ::GraphNeighborsCount, comm, {rank}, 1, n, "MPI_Graph_neighbors_count");
}

int PMPI_Graph_neighbors(MPI_Comm comm, int rank, int maxn, int neighbors[]) {
    return query_ints(CommQ::GraphNeighbors, comm, {rank, maxn}, maxn, neighbors, "MPI_Graph_neighbors");
}

int PMPI_Dist_graph_neighbors_count(MPI_Comm comm, int* indegree, int* outdegree, int* weighted) {
    std::vector<int64_t> out;
    const int rc = comm_query(CommQ::DistGraphNeighborsCount, comm, {}, out, 3, "MPI_Dist_graph_neighbors_count");
    *indegree = static_cast<int>(out[0]);
    *outdegree = static_cast<int>(out[1]);
    *weighted = static_cast<int>(out[2]);
    return rc;
}

int PMPI_Dist_graph_neighbors(MPI_Comm comm, int maxin, int sources[], int sourceweights[], int maxout, int dests[], int destweights[]) {
    std::vector<int64_t> out;
    const size_t n = static_cast<size_t>(2 * (maxin + maxout));
    const int rc = comm_query(CommQ::DistGraphNeighbors, comm, {maxin, maxout}, out, n, "MPI_Dist_graph_neighbors");
    // The answers: sources, their weights, destinations, theirs.
    copy_ints(out.data(), maxin, sources);
    if (sourceweights != MPI_UNWEIGHTED && sourceweights) copy_ints(out.data() + maxin, maxin, sourceweights);
    copy_ints(out.data() + 2 * maxin, maxout, dests);
    if (destweights != MPI_UNWEIGHTED && destweights) copy_ints(out.data() + 2 * maxin + maxout, maxout, destweights);
    return rc;
}

// The real library's factorisation: decompositions must match native runs.
int PMPI_Dims_create(int nnodes, int ndims, int dims[]) {
    require_init("MPI_Dims_create");
    std::vector<int64_t> args = {nnodes, ndims};
    for (int i = 0; i < ndims; ++i) args.push_back(dims[i]);
    std::vector<int64_t> out;
    CallFrame c(Call::CommQuery);
    const uint64_t res = c.space(static_cast<size_t>(std::max(ndims, 1)) * sizeof(int64_t));
    c.arg(static_cast<int64_t>(CommQ::DimsCreate)).arg(static_cast<int64_t>(kCommWorld)).arg(static_cast<int64_t>(res));
    for (int64_t a : args) c.arg(a);
    const int rc = c.run();
    copy_ints(static_cast<const int64_t*>(at(res)), ndims, dims);
    return rc;
}

// ---- attributes ----------------------------------------------------------------------------
int PMPI_Comm_create_keyval(MPI_Comm_copy_attr_function* copy, MPI_Comm_delete_attr_function* del, int* keyval, void* extra) {
    return create_keyval({.kind = 0, .comm_copy = copy, .comm_delete = del, .extra = extra}, keyval);
}

int PMPI_Comm_free_keyval(int* keyval) { return free_keyval(keyval); }

int PMPI_Comm_set_attr(MPI_Comm comm, int keyval, void* value) {
    if (int e = comm_call_error(comm, "MPI_Comm_set_attr")) return e;
    set_attribute(comm, keyval, value);
    return MPI_SUCCESS;
}

int PMPI_Comm_get_attr(MPI_Comm comm, int keyval, void* value, int* flag) {
    if (int e = comm_call_error(comm, "MPI_Comm_get_attr")) return e;
    Shim& s = S();
    static int tag_ub, host, io, wtime_global, appnum, universe, lastused;
    int* predefined = nullptr;
    switch (keyval) {
        case MPI_TAG_UB: tag_ub = s.tag_ub; predefined = &tag_ub; break;
        case MPI_HOST: host = MPI_PROC_NULL; predefined = &host; break;
        case MPI_IO: io = MPI_ANY_SOURCE; predefined = &io; break;
        case MPI_WTIME_IS_GLOBAL: wtime_global = s.wtime_global; predefined = &wtime_global; break;
        case MPI_APPNUM: appnum = s.appnum; predefined = &appnum; break;
        case MPI_UNIVERSE_SIZE: universe = s.universe; predefined = &universe; break;
        case MPI_LASTUSEDCODE: lastused = MPI_ERR_LASTCODE; predefined = &lastused; break;
        default: break;
    }
    if (predefined) {
        *static_cast<int**>(value) = predefined;
        *flag = 1;
        return MPI_SUCCESS;
    }
    get_attr(comm->d->attrs, keyval, value, flag);
    return MPI_SUCCESS;
}

int PMPI_Comm_delete_attr(MPI_Comm comm, int keyval) {
    if (int e = comm_call_error(comm, "MPI_Comm_delete_attr")) return e;
    delete_attribute(comm, keyval);
    return MPI_SUCCESS;
}

// MPI-1 names of the same.
int PMPI_Attr_get(MPI_Comm comm, int keyval, void* value, int* flag) { return PMPI_Comm_get_attr(comm, keyval, value, flag); }
int PMPI_Attr_put(MPI_Comm comm, int keyval, void* value) { return PMPI_Comm_set_attr(comm, keyval, value); }
int PMPI_Attr_delete(MPI_Comm comm, int keyval) { return PMPI_Comm_delete_attr(comm, keyval); }
int PMPI_Keyval_create(MPI_Copy_function* copy, MPI_Delete_function* del, int* keyval, void* extra) {
    return PMPI_Comm_create_keyval(reinterpret_cast<MPI_Comm_copy_attr_function*>(copy), reinterpret_cast<MPI_Comm_delete_attr_function*>(del),
                                   keyval, extra);
}
int PMPI_Keyval_free(int* keyval) { return PMPI_Comm_free_keyval(keyval); }

// The predefined callbacks, of communicators (also under their MPI-1 names)
// and of datatypes.
int OMPI_C_MPI_COMM_NULL_COPY_FN(MPI_Comm, int, void*, void*, void*, int* flag) { return copy_nothing(flag); }
int OMPI_C_MPI_COMM_DUP_FN(MPI_Comm, int, void*, void* in, void* out, int* flag) { return copy_value(in, out, flag); }
int OMPI_C_MPI_COMM_NULL_DELETE_FN(MPI_Comm, int, void*, void*) { return MPI_SUCCESS; }
int OMPI_C_MPI_NULL_COPY_FN(MPI_Comm, int, void*, void*, void*, int* flag) { return copy_nothing(flag); }
int OMPI_C_MPI_DUP_FN(MPI_Comm, int, void*, void* in, void* out, int* flag) { return copy_value(in, out, flag); }
int OMPI_C_MPI_NULL_DELETE_FN(MPI_Comm, int, void*, void*) { return MPI_SUCCESS; }
int OMPI_C_MPI_TYPE_NULL_COPY_FN(MPI_Datatype, int, void*, void*, void*, int* flag) { return copy_nothing(flag); }
int OMPI_C_MPI_TYPE_DUP_FN(MPI_Datatype, int, void*, void* in, void* out, int* flag) { return copy_value(in, out, flag); }
int OMPI_C_MPI_TYPE_NULL_DELETE_FN(MPI_Datatype, int, void*, void*) { return MPI_SUCCESS; }

// ---- error handlers ---------------------------------------------------------------------
int PMPI_Comm_create_errhandler(MPI_Comm_errhandler_function* fn, MPI_Errhandler* eh) {
    auto* e = new ompi_errhandler_t;
    e->id = new_id();
    e->d = new ErrhandlerData{fn, 2};
    *eh = e;
    return MPI_SUCCESS;
}
int PMPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler eh) {
    if (int e = check_comm(comm, "MPI_Comm_set_errhandler")) return e;
    comm->d->errhandler = eh;
    return MPI_SUCCESS;
}
int PMPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler* eh) {
    if (int e = check_comm(comm, "MPI_Comm_get_errhandler")) return e;
    *eh = comm->d->errhandler;
    return MPI_SUCCESS;
}
int PMPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler eh) { return PMPI_Comm_set_errhandler(comm, eh); }
int PMPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler* eh) { return PMPI_Comm_get_errhandler(comm, eh); }
int PMPI_Errhandler_free(MPI_Errhandler* eh) {
    *eh = MPI_ERRHANDLER_NULL;
    return MPI_SUCCESS;
}
int PMPI_Comm_call_errhandler(MPI_Comm comm, int code) { return handle_error(comm, code, "MPI_Comm_call_errhandler"); }

// ---- info objects -----------------------------------------------------------------------
int PMPI_Info_create(MPI_Info* info) {
    auto* i = new ompi_info_t;
    i->id = new_id();
    i->d = new InfoData;
    *info = i;
    return MPI_SUCCESS;
}
int PMPI_Info_free(MPI_Info* info) {
    if (*info && *info != MPI_INFO_NULL && *info != MPI_INFO_ENV) {
        delete (*info)->d;
        delete *info;
    }
    *info = MPI_INFO_NULL;
    return MPI_SUCCESS;
}
int PMPI_Info_set(MPI_Info info, const char* key, const char* value) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    info->d->entries[key] = value;
    return MPI_SUCCESS;
}
int PMPI_Info_get(MPI_Info info, const char* key, int valuelen, char* value, int* flag) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    auto it = info->d->entries.find(key);
    *flag = it != info->d->entries.end();
    if (*flag) snprintf(value, static_cast<size_t>(valuelen) + 1, "%s", it->second.c_str());
    return MPI_SUCCESS;
}
int PMPI_Info_get_valuelen(MPI_Info info, const char* key, int* valuelen, int* flag) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    auto it = info->d->entries.find(key);
    *flag = it != info->d->entries.end();
    if (*flag) *valuelen = static_cast<int>(it->second.size());
    return MPI_SUCCESS;
}
int PMPI_Info_delete(MPI_Info info, const char* key) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    return info->d->entries.erase(key) ? MPI_SUCCESS : MPI_ERR_INFO_NOKEY;
}
int PMPI_Info_get_nkeys(MPI_Info info, int* nkeys) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    *nkeys = static_cast<int>(info->d->entries.size());
    return MPI_SUCCESS;
}
int PMPI_Info_get_nthkey(MPI_Info info, int n, char* key) {
    if (!info || info == MPI_INFO_NULL) return MPI_ERR_INFO;
    if (n < 0 || n >= static_cast<int>(info->d->entries.size())) return MPI_ERR_ARG;
    auto it = info->d->entries.begin();
    std::advance(it, n);
    snprintf(key, MPI_MAX_INFO_KEY, "%s", it->first.c_str());
    return MPI_SUCCESS;
}
int PMPI_Info_dup(MPI_Info info, MPI_Info* out) {
    PMPI_Info_create(out);
    if (info && info != MPI_INFO_NULL) (*out)->d->entries = info->d->entries;
    return MPI_SUCCESS;
}
int PMPI_Comm_set_info(MPI_Comm, MPI_Info) { return MPI_SUCCESS; }
int PMPI_Comm_get_info(MPI_Comm, MPI_Info* info) { return PMPI_Info_create(info); }

// ---- handle conversion ---------------------------------------------------------------------
MPI_Fint PMPI_Comm_c2f(MPI_Comm comm) { return static_cast<MPI_Fint>(comm ? comm->id : 0); }

}  // extern "C"
