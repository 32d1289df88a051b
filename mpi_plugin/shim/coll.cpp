// Collectives, blocking and nonblocking. Data-moving collectives travel as
// packed bytes (MPI_BYTE at the proxy: no arithmetic, so the result is the
// same whatever the algorithm); reductions are run by the proxy on the real
// datatype and operation, so the real Open MPI algorithm combines the
// values in its own order and the result is bit for bit the native one.
#include "mpi_plugin/shim/shim.hpp"

#include <algorithm>
#include <cstring>

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

namespace {

// One collective call being put together.
class Coll {
public:
    Coll(ckpt::mpi::Coll kind, MPI_Comm comm, MPI_Request* request, const char* fn)
        : kind_(kind), comm_(comm), request_(request), fn_(fn), frame_(Call::Collective) {
        for (int i = 0; i < kCArgs; ++i) frame_.arg(0);
        frame_.arg_at(kCKind) = static_cast<int64_t>(kind);
        frame_.arg_at(kCComm) = static_cast<int64_t>(comm->id);
        if (request) {
            req_ = new ompi_request_t;
            req_->id = new_id();
            req_->d = new RequestData;
            req_->d->kind = ReqKind::Collective;
            req_->d->proxy_id = req_->id;
            frame_.arg_at(kCRequest) = static_cast<int64_t>(req_->id);
        }
    }

    int rank() const { return comm_->d->rank; }
    int size() const { return comm_->d->size; }
    void set(CollArg a, int64_t v) { frame_.arg_at(a) = v; }

    // Channel memory that lives as long as the operation.
    uint64_t space(uint64_t bytes) {
        if (!req_) return frame_.space(bytes);
        const uint64_t off = alloc_data(bytes);
        req_->d->extra_allocations.push_back(off);
        return off;
    }
    uint64_t array(const std::vector<int64_t>& v) {
        const uint64_t off = space(v.size() * sizeof(int64_t));
        if (!v.empty()) memcpy(at(off), v.data(), v.size() * sizeof(int64_t));
        return off;
    }

    // count elements of t at buf, packed, as the send data.
    uint64_t send_packed(const void* buf, int64_t count, MPI_Datatype t) {
        const uint64_t bytes = packed_bytes(t, count);
        uint64_t off = in_place_offset(buf, count, t);
        if (off == 0) {
            off = space(bytes);
            pack_into(at(off), buf, count, t);
        }
        set(kCSendOff, static_cast<int64_t>(off));
        set(kCSendBytes, static_cast<int64_t>(bytes));
        return off;
    }
    // Space for packed output, unpacked into buf when the operation ends.
    // In place in the shared heap when it can be.
    uint64_t recv_packed(void* buf, int64_t count, MPI_Datatype t) {
        const uint64_t bytes = packed_bytes(t, count);
        uint64_t off = in_place_offset(buf, count, t);
        if (off == 0) {
            off = space(bytes);
            outputs_.push_back({buf, static_cast<int>(count), t, off});
        }
        set(kCRecvOff, static_cast<int64_t>(off));
        set(kCRecvBytes, static_cast<int64_t>(bytes));
        return off;
    }
    // Reductions: the elements as the real datatype sees them. Returns the
    // channel address the proxy must use as the buffer (an int64 offset that
    // may lie before the block when the type's true lower bound is positive).
    int64_t reduce_input(const void* buf, int64_t count, MPI_Datatype t) {
        if (type_data(t).map.is_contiguous()) {
            return static_cast<int64_t>(send_packed(buf, count, t));
        }
        const Span sp = layout_span(t, count);
        const uint64_t off = space(sp.bytes);
        memcpy(at(off), static_cast<const unsigned char*>(buf) + sp.start, sp.bytes);
        set(kCSendOff, static_cast<int64_t>(off) - sp.start);
        set(kCSendBytes, static_cast<int64_t>(sp.bytes));
        return static_cast<int64_t>(off) - sp.start;
    }
    int64_t reduce_output(void* buf, int64_t count, MPI_Datatype t, bool prefill) {
        if (type_data(t).map.is_contiguous()) {
            const uint64_t off = recv_packed(buf, count, t);
            if (prefill && at(off) != buf) pack_into(at(off), buf, count, t);
            return static_cast<int64_t>(off);
        }
        const Span sp = layout_span(t, count);
        const uint64_t off = space(sp.bytes);
        if (prefill) memcpy(at(off), static_cast<const unsigned char*>(buf) + sp.start, sp.bytes);
        set(kCRecvOff, static_cast<int64_t>(off) - sp.start);
        set(kCRecvBytes, static_cast<int64_t>(sp.bytes));
        layout_out_ = {buf, static_cast<int>(count), t, off};
        has_layout_out_ = true;
        return static_cast<int64_t>(off) - sp.start;
    }
    void output_piece(void* buf, int64_t count, MPI_Datatype t, uint64_t off) { outputs_.push_back({buf, static_cast<int>(count), t, off}); }

    int run() {
        const int rc = frame_.run();
        if (rc != MPI_SUCCESS) {
            if (req_) {
                for (uint64_t off : req_->d->extra_allocations) free_data(off);
                delete req_->d;
                delete req_;
                *request_ = MPI_REQUEST_NULL;
            }
            return handle_error(comm_, rc, fn_);
        }
        if (req_) {
            // Outputs are unpacked when the request completes.
            RequestData& d = *req_->d;
            for (const auto& o : outputs_) d.pieces.push_back(o);
            if (has_layout_out_) {
                // The layout block is the request's own buffer (freed once).
                d.user_buf = layout_out_.user_buf;
                d.count = layout_out_.count;
                d.type = layout_out_.type;
                d.layout = true;
                d.offset = layout_out_.offset;
                auto& extra = d.extra_allocations;
                extra.erase(std::remove(extra.begin(), extra.end(), layout_out_.offset), extra.end());
            }
            *request_ = req_;
            return MPI_SUCCESS;
        }
        for (const auto& o : outputs_) unpack_from(at(o.offset), packed_bytes(o.type, o.count), o.user_buf, o.count, o.type);
        if (has_layout_out_) {
            const Span sp = layout_span(layout_out_.type, layout_out_.count);
            copy_layout_out(layout_out_.user_buf, static_cast<unsigned char*>(at(layout_out_.offset)) - sp.start, layout_out_.count,
                            layout_out_.type);
        }
        return MPI_SUCCESS;
    }

private:
    ckpt::mpi::Coll kind_;
    MPI_Comm comm_;
    MPI_Request* request_;
    const char* fn_;
    CallFrame frame_;
    MPI_Request req_ = nullptr;
    std::vector<RequestData::Piece> outputs_;
    RequestData::Piece layout_out_{};
    bool has_layout_out_ = false;
};

MPI_Aint extent_of(MPI_Datatype t) { return static_cast<MPI_Aint>(type_data(t).map.extent()); }

unsigned char* elem(void* buf, MPI_Datatype t, int64_t index) { return static_cast<unsigned char*>(buf) + index * extent_of(t); }
const unsigned char* elem(const void* buf, MPI_Datatype t, int64_t index) {
    return static_cast<const unsigned char*>(buf) + index * extent_of(t);
}

// One block per rank, packed back to back in channel memory: the sizes and
// offsets the proxy is given as the counts and displacements (in bytes).
struct PackedBlocks {
    std::vector<int64_t> bytes, offsets;
    uint64_t total = 0;
};

// `bytes_of(i)`: the packed size of rank i's block.
template <class BytesOf>
PackedBlocks pack_blocks(int n, BytesOf bytes_of) {
    PackedBlocks b;
    for (int i = 0; i < n; ++i) {
        const uint64_t bytes = bytes_of(i);
        b.bytes.push_back(static_cast<int64_t>(bytes));
        b.offsets.push_back(static_cast<int64_t>(b.total));
        b.total += bytes;
    }
    return b;
}

// ---- the collectives, each with its nonblocking twin (request != null) -------------------

int barrier(MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    Coll c(ckpt::mpi::Coll::Barrier, comm, r, fn);
    return c.run();
}

int bcast(void* buf, int count, MPI_Datatype t, int root, MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    Coll c(ckpt::mpi::Coll::Bcast, comm, r, fn);
    c.set(kCRoot, root);
    if (c.rank() == root) {
        c.send_packed(buf, count, t);
    } else {
        const uint64_t off = c.recv_packed(buf, count, t);
        c.set(kCSendOff, static_cast<int64_t>(off));
        c.set(kCSendBytes, static_cast<int64_t>(packed_bytes(t, count)));
    }
    return c.run();
}

int reduce_like(ckpt::mpi::Coll kind, const void* sendbuf, void* recvbuf, int count, MPI_Datatype t, MPI_Op op, int root,
                MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    if (!valid_type(t)) return handle_error(comm, MPI_ERR_TYPE, fn);
    Coll c(kind, comm, r, fn);
    c.set(kCRoot, root);
    c.set(kCOp, static_cast<int64_t>(op->id));
    c.set(kCType, static_cast<int64_t>(t->id));
    c.set(kCCount, count);
    const bool gets_result = kind != ckpt::mpi::Coll::Reduce || c.rank() == root;
    if (sendbuf == MPI_IN_PLACE) {
        c.set(kCInPlace, 1);
        if (gets_result) {
            c.reduce_output(recvbuf, count, t, true);
        } else {
            c.reduce_input(recvbuf, count, t);
        }
        return c.run();
    }
    c.reduce_input(sendbuf, count, t);
    if (gets_result) c.reduce_output(recvbuf, count, t, false);
    return c.run();
}

int reduce_scatter(const void* sendbuf, void* recvbuf, const int* recvcounts, int blockcount, MPI_Datatype t, MPI_Op op, MPI_Comm comm,
                   MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    const bool block = recvcounts == nullptr;
    Coll c(block ? ckpt::mpi::Coll::ReduceScatterBlock : ckpt::mpi::Coll::ReduceScatter, comm, r, fn);
    const int n = c.size();
    std::vector<int64_t> counts(static_cast<size_t>(n));
    int64_t total = 0;
    for (int i = 0; i < n; ++i) total += counts[static_cast<size_t>(i)] = block ? blockcount : recvcounts[i];
    c.set(kCOp, static_cast<int64_t>(op->id));
    c.set(kCType, static_cast<int64_t>(t->id));
    c.set(kCCount, block ? blockcount : 0);
    c.set(kCRecvCounts, static_cast<int64_t>(c.array(counts)));
    const int64_t mine = counts[static_cast<size_t>(c.rank())];
    if (sendbuf == MPI_IN_PLACE) {
        // The input is the whole of recvbuf; the result lands at its start.
        c.set(kCInPlace, 1);
        // (The whole buffer comes back as the real reduction left it.)
        c.reduce_output(recvbuf, total, t, true);
        return c.run();
    }
    c.reduce_input(sendbuf, total, t);
    c.reduce_output(recvbuf, mine, t, false);
    return c.run();
}

// Gather and Allgather (all = every rank receives), regular or v (v: the
// caller is a v variant; rcounts matter at the root alone and may be null
// elsewhere).
int gather_like(bool all, bool v, const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf, int rcount, const int* rcounts,
                const int* displs, MPI_Datatype rtype, int root, MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    Coll c(all ? (v ? ckpt::mpi::Coll::Allgatherv : ckpt::mpi::Coll::Allgather) : (v ? ckpt::mpi::Coll::Gatherv : ckpt::mpi::Coll::Gather),
           comm, r, fn);
    c.set(kCRoot, root);
    const int n = c.size(), me = c.rank();
    const bool receives = all || me == root;
    auto count_of = [&](int i) -> int64_t { return v ? rcounts[i] : rcount; };
    auto displ_of = [&](int i) -> int64_t { return v ? displs[i] : static_cast<int64_t>(i) * rcount; };
    if (sendbuf == MPI_IN_PLACE) {
        c.send_packed(elem(recvbuf, rtype, displ_of(me)), count_of(me), rtype);
    } else {
        c.send_packed(sendbuf, scount, stype);
    }
    if (receives) {
        const PackedBlocks recv_blocks = pack_blocks(n, [&](int i) { return packed_bytes(rtype, count_of(i)); });
        const uint64_t off = c.space(recv_blocks.total);
        c.set(kCRecvOff, static_cast<int64_t>(off));
        c.set(kCRecvBytes, static_cast<int64_t>(recv_blocks.total));
        c.set(kCRecvCounts, static_cast<int64_t>(c.array(recv_blocks.bytes)));
        c.set(kCRecvDispls, static_cast<int64_t>(c.array(recv_blocks.offsets)));
        for (int i = 0; i < n; ++i) {
            const uint64_t block = off + static_cast<uint64_t>(recv_blocks.offsets[static_cast<size_t>(i)]);
            c.output_piece(elem(recvbuf, rtype, displ_of(i)), count_of(i), rtype, block);
        }
    }
    return c.run();
}

// Scatter, regular or v (scounts matter at the root alone).
int scatter_like(bool v, const void* sendbuf, int scount, const int* scounts, const int* displs, MPI_Datatype stype, void* recvbuf, int rcount,
                 MPI_Datatype rtype, int root, MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    Coll c(v ? ckpt::mpi::Coll::Scatterv : ckpt::mpi::Coll::Scatter, comm, r, fn);
    c.set(kCRoot, root);
    const int n = c.size(), me = c.rank();
    auto count_of = [&](int i) -> int64_t { return v ? scounts[i] : scount; };
    auto displ_of = [&](int i) -> int64_t { return v ? displs[i] : static_cast<int64_t>(i) * scount; };
    if (me == root) {
        const PackedBlocks send_blocks = pack_blocks(n, [&](int i) { return packed_bytes(stype, count_of(i)); });
        const uint64_t off = c.space(send_blocks.total);
        for (int i = 0; i < n; ++i) {
            unsigned char* block = static_cast<unsigned char*>(at(off)) + send_blocks.offsets[static_cast<size_t>(i)];
            pack_into(block, elem(sendbuf, stype, displ_of(i)), count_of(i), stype);
        }
        c.set(kCSendOff, static_cast<int64_t>(off));
        c.set(kCSendBytes, static_cast<int64_t>(send_blocks.total));
        c.set(kCSendCounts, static_cast<int64_t>(c.array(send_blocks.bytes)));
        c.set(kCSendDispls, static_cast<int64_t>(c.array(send_blocks.offsets)));
    }
    if (recvbuf == MPI_IN_PLACE) {
        c.set(kCInPlace, 1);
        const uint64_t own = static_cast<uint64_t>(packed_bytes(stype, count_of(me)));
        c.set(kCRecvOff, static_cast<int64_t>(c.space(own)));
        c.set(kCRecvBytes, static_cast<int64_t>(own));
    } else {
        c.recv_packed(recvbuf, rcount, rtype);
    }
    return c.run();
}

// Alltoall, Alltoallv and Alltoallw: per-peer blocks, packed.
int alltoall_like(const void* sendbuf, const int* scounts, const int* sdispls, const MPI_Datatype* stypes, void* recvbuf, const int* rcounts,
                  const int* rdispls, const MPI_Datatype* rtypes, bool byte_displs, MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    Coll c(ckpt::mpi::Coll::Alltoallv, comm, r, fn);
    const int n = c.size();
    auto addr = [&](const void* base, int i, const int* displs, MPI_Datatype t) {
        return static_cast<const unsigned char*>(base) + (byte_displs ? displs[i] : displs[i] * extent_of(t));
    };
    // In place, each rank's send block is its receive block.
    const bool in_place = sendbuf == MPI_IN_PLACE;
    const PackedBlocks send_blocks =
        pack_blocks(n, [&](int i) { return in_place ? packed_bytes(rtypes[i], rcounts[i]) : packed_bytes(stypes[i], scounts[i]); });
    const PackedBlocks recv_blocks = pack_blocks(n, [&](int i) { return packed_bytes(rtypes[i], rcounts[i]); });
    const uint64_t soff = c.space(send_blocks.total), roff = c.space(recv_blocks.total);
    for (int i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (in_place)
            pack_into(static_cast<unsigned char*>(at(soff)) + send_blocks.offsets[k], addr(recvbuf, i, rdispls, rtypes[i]), rcounts[i], rtypes[i]);
        else
            pack_into(static_cast<unsigned char*>(at(soff)) + send_blocks.offsets[k], addr(sendbuf, i, sdispls, stypes[i]), scounts[i], stypes[i]);
        c.output_piece(const_cast<unsigned char*>(addr(recvbuf, i, rdispls, rtypes[i])), rcounts[i], rtypes[i],
                       roff + static_cast<uint64_t>(recv_blocks.offsets[k]));
    }
    c.set(kCSendOff, static_cast<int64_t>(soff));
    c.set(kCSendBytes, static_cast<int64_t>(send_blocks.total));
    c.set(kCRecvOff, static_cast<int64_t>(roff));
    c.set(kCRecvBytes, static_cast<int64_t>(recv_blocks.total));
    c.set(kCSendCounts, static_cast<int64_t>(c.array(send_blocks.bytes)));
    c.set(kCSendDispls, static_cast<int64_t>(c.array(send_blocks.offsets)));
    c.set(kCRecvCounts, static_cast<int64_t>(c.array(recv_blocks.bytes)));
    c.set(kCRecvDispls, static_cast<int64_t>(c.array(recv_blocks.offsets)));
    return c.run();
}

// Regular alltoall as alltoallv.
int alltoall(const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf, int rcount, MPI_Datatype rtype, MPI_Comm comm, MPI_Request* r,
             const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    const int n = comm->d->size;
    std::vector<int> sc(static_cast<size_t>(n), scount), sd(static_cast<size_t>(n)), rc(static_cast<size_t>(n), rcount), rd(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        sd[static_cast<size_t>(i)] = i * scount;
        rd[static_cast<size_t>(i)] = i * rcount;
    }
    std::vector<MPI_Datatype> st(static_cast<size_t>(n), stype), rt(static_cast<size_t>(n), rtype);
    if (sendbuf == MPI_IN_PLACE) {
        sc = rc;
        sd = rd;
        st = rt;
    }
    return alltoall_like(sendbuf, sc.data(), sd.data(), st.data(), recvbuf, rc.data(), rd.data(), rt.data(), false, comm, r, fn);
}

int alltoallv(const void* sendbuf, const int* scounts, const int* sdispls, MPI_Datatype stype, void* recvbuf, const int* rcounts,
              const int* rdispls, MPI_Datatype rtype, MPI_Comm comm, MPI_Request* r, const char* fn) {
    if (int e = comm_call_error(comm, fn)) return e;
    const int n = comm->d->size;
    std::vector<MPI_Datatype> st(static_cast<size_t>(n), stype), rt(static_cast<size_t>(n), rtype);
    return alltoall_like(sendbuf, scounts, sdispls, st.data(), recvbuf, rcounts, rdispls, rt.data(), false, comm, r, fn);
}

}  // namespace

extern "C" {

int PMPI_Barrier(MPI_Comm comm) { return barrier(comm, nullptr, "MPI_Barrier"); }
int PMPI_Ibarrier(MPI_Comm comm, MPI_Request* r) { return barrier(comm, r, "MPI_Ibarrier"); }

int PMPI_Bcast(void* buf, int count, MPI_Datatype t, int root, MPI_Comm comm) { return bcast(buf, count, t, root, comm, nullptr, "MPI_Bcast"); }
int PMPI_Ibcast(void* buf, int count, MPI_Datatype t, int root, MPI_Comm comm, MPI_Request* r) {
    return bcast(buf, count, t, root, comm, r, "MPI_Ibcast");
}

int PMPI_Reduce(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, int root, MPI_Comm comm) {
    return reduce_like(ckpt::mpi::Coll::Reduce, s, rb, count, t, op, root, comm, nullptr, "MPI_Reduce");
}
int PMPI_Ireduce(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, int root, MPI_Comm comm, MPI_Request* r) {
    return reduce_like(ckpt::mpi::Coll::Reduce, s, rb, count, t, op, root, comm, r, "MPI_Ireduce");
}
int PMPI_Allreduce(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    return reduce_like(ckpt::mpi::Coll::Allreduce, s, rb, count, t, op, 0, comm, nullptr, "MPI_Allreduce");
}
int PMPI_Iallreduce(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request* r) {
    return reduce_like(ckpt::mpi::Coll::Allreduce, s, rb, count, t, op, 0, comm, r, "MPI_Iallreduce");
}
int PMPI_Scan(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    return reduce_like(ckpt::mpi::Coll::Scan, s, rb, count, t, op, 0, comm, nullptr, "MPI_Scan");
}
int PMPI_Iscan(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request* r) {
    return reduce_like(ckpt::mpi::Coll::Scan, s, rb, count, t, op, 0, comm, r, "MPI_Iscan");
}
int PMPI_Exscan(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    return reduce_like(ckpt::mpi::Coll::Exscan, s, rb, count, t, op, 0, comm, nullptr, "MPI_Exscan");
}
int PMPI_Iexscan(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request* r) {
    return reduce_like(ckpt::mpi::Coll::Exscan, s, rb, count, t, op, 0, comm, r, "MPI_Iexscan");
}
int PMPI_Reduce_scatter(const void* s, void* rb, const int* counts, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    return reduce_scatter(s, rb, counts, 0, t, op, comm, nullptr, "MPI_Reduce_scatter");
}
int PMPI_Ireduce_scatter(const void* s, void* rb, const int* counts, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request* r) {
    return reduce_scatter(s, rb, counts, 0, t, op, comm, r, "MPI_Ireduce_scatter");
}
int PMPI_Reduce_scatter_block(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm) {
    return reduce_scatter(s, rb, nullptr, count, t, op, comm, nullptr, "MPI_Reduce_scatter_block");
}
int PMPI_Ireduce_scatter_block(const void* s, void* rb, int count, MPI_Datatype t, MPI_Op op, MPI_Comm comm, MPI_Request* r) {
    return reduce_scatter(s, rb, nullptr, count, t, op, comm, r, "MPI_Ireduce_scatter_block");
}

int PMPI_Gather(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root, MPI_Comm comm) {
    return gather_like(false, false, s, sc, st, rb, rc, nullptr, nullptr, rt, root, comm, nullptr, "MPI_Gather");
}
int PMPI_Igather(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root, MPI_Comm comm, MPI_Request* r) {
    return gather_like(false, false, s, sc, st, rb, rc, nullptr, nullptr, rt, root, comm, r, "MPI_Igather");
}
int PMPI_Gatherv(const void* s, int sc, MPI_Datatype st, void* rb, const int* rcs, const int* displs, MPI_Datatype rt, int root, MPI_Comm comm) {
    return gather_like(false, true, s, sc, st, rb, 0, rcs, displs, rt, root, comm, nullptr, "MPI_Gatherv");
}
int PMPI_Igatherv(const void* s, int sc, MPI_Datatype st, void* rb, const int* rcs, const int* displs, MPI_Datatype rt, int root,
                  MPI_Comm comm, MPI_Request* r) {
    return gather_like(false, true, s, sc, st, rb, 0, rcs, displs, rt, root, comm, r, "MPI_Igatherv");
}
int PMPI_Allgather(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, MPI_Comm comm) {
    return gather_like(true, false, s, sc, st, rb, rc, nullptr, nullptr, rt, 0, comm, nullptr, "MPI_Allgather");
}
int PMPI_Iallgather(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, MPI_Comm comm, MPI_Request* r) {
    return gather_like(true, false, s, sc, st, rb, rc, nullptr, nullptr, rt, 0, comm, r, "MPI_Iallgather");
}
int PMPI_Allgatherv(const void* s, int sc, MPI_Datatype st, void* rb, const int* rcs, const int* displs, MPI_Datatype rt, MPI_Comm comm) {
    return gather_like(true, true, s, sc, st, rb, 0, rcs, displs, rt, 0, comm, nullptr, "MPI_Allgatherv");
}
int PMPI_Iallgatherv(const void* s, int sc, MPI_Datatype st, void* rb, const int* rcs, const int* displs, MPI_Datatype rt, MPI_Comm comm,
                     MPI_Request* r) {
    return gather_like(true, true, s, sc, st, rb, 0, rcs, displs, rt, 0, comm, r, "MPI_Iallgatherv");
}

int PMPI_Scatter(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root, MPI_Comm comm) {
    return scatter_like(false, s, sc, nullptr, nullptr, st, rb, rc, rt, root, comm, nullptr, "MPI_Scatter");
}
int PMPI_Iscatter(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root, MPI_Comm comm, MPI_Request* r) {
    return scatter_like(false, s, sc, nullptr, nullptr, st, rb, rc, rt, root, comm, r, "MPI_Iscatter");
}
int PMPI_Scatterv(const void* s, const int* scs, const int* displs, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root, MPI_Comm comm) {
    return scatter_like(true, s, 0, scs, displs, st, rb, rc, rt, root, comm, nullptr, "MPI_Scatterv");
}
int PMPI_Iscatterv(const void* s, const int* scs, const int* displs, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, int root,
                   MPI_Comm comm, MPI_Request* r) {
    return scatter_like(true, s, 0, scs, displs, st, rb, rc, rt, root, comm, r, "MPI_Iscatterv");
}

int PMPI_Alltoall(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, MPI_Comm comm) {
    return alltoall(s, sc, st, rb, rc, rt, comm, nullptr, "MPI_Alltoall");
}
int PMPI_Ialltoall(const void* s, int sc, MPI_Datatype st, void* rb, int rc, MPI_Datatype rt, MPI_Comm comm, MPI_Request* r) {
    return alltoall(s, sc, st, rb, rc, rt, comm, r, "MPI_Ialltoall");
}
int PMPI_Alltoallv(const void* s, const int* sc, const int* sd, MPI_Datatype st, void* rb, const int* rc, const int* rd, MPI_Datatype rt,
                   MPI_Comm comm) {
    return alltoallv(s, sc, sd, st, rb, rc, rd, rt, comm, nullptr, "MPI_Alltoallv");
}
int PMPI_Ialltoallv(const void* s, const int* sc, const int* sd, MPI_Datatype st, void* rb, const int* rc, const int* rd, MPI_Datatype rt,
                    MPI_Comm comm, MPI_Request* r) {
    return alltoallv(s, sc, sd, st, rb, rc, rd, rt, comm, r, "MPI_Ialltoallv");
}
int PMPI_Alltoallw(const void* s, const int* sc, const int* sd, const MPI_Datatype* st, void* rb, const int* rc, const int* rd,
                   const MPI_Datatype* rt, MPI_Comm comm) {
    return alltoall_like(s, sc, sd, st, rb, rc, rd, rt, true, comm, nullptr, "MPI_Alltoallw");
}
int PMPI_Ialltoallw(const void* s, const int* sc, const int* sd, const MPI_Datatype* st, void* rb, const int* rc, const int* rd,
                    const MPI_Datatype* rt, MPI_Comm comm, MPI_Request* r) {
    return alltoall_like(s, sc, sd, st, rb, rc, rd, rt, true, comm, r, "MPI_Ialltoallw");
}

}  // extern "C"
