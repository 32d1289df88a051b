// Point-to-point calls and requests. Data goes through the channel:
// packed by the shim on send, received into the channel by the proxy and
// unpacked by the shim once the receive is complete (MPI leaves a receive
// buffer undefined until then).
#include "mpi_plugin/shim/shim.hpp"

#include <cstring>

using namespace ckpt::mpi;
using namespace ckpt::mpi::shim;

namespace ckpt::mpi::shim {


void fill_status(MPI_Status* st, const int64_t* w) {
    if (!st || st == MPI_STATUS_IGNORE) return;
    st->MPI_SOURCE = static_cast<int>(w[kStSource]);
    st->MPI_TAG = static_cast<int>(w[kStTag]);
    st->MPI_ERROR = static_cast<int>(w[kStError]);
    st->_cancelled = static_cast<int>(w[kStCancelled]);
    st->_ucount = static_cast<size_t>(w[kStBytes]);
}

namespace {

MPI_Status empty_status() {
    MPI_Status st{};
    st.MPI_SOURCE = MPI_ANY_SOURCE;
    st.MPI_TAG = MPI_ANY_TAG;
    st.MPI_ERROR = MPI_SUCCESS;
    return st;
}

MPI_Status proc_null_status() {
    MPI_Status st = empty_status();
    st.MPI_SOURCE = MPI_PROC_NULL;
    return st;
}

void copy_status(MPI_Status* out, const MPI_Status& in) {
    if (out && out != MPI_STATUS_IGNORE) *out = in;
}

MPI_Request new_request(ReqKind kind) {
    auto* r = new ompi_request_t;
    r->id = new_id();
    r->d = new RequestData;
    r->d->kind = kind;
    return r;
}

void delete_request(MPI_Request r) {
    delete r->d;
    delete r;
}

bool persistent(const RequestData& d) { return d.kind == ReqKind::PersistentSend || d.kind == ReqKind::PersistentRecv; }

int check_p2p(MPI_Comm comm, int count, MPI_Datatype type, const char* fn) {
    require_init(fn);
    if (!valid_comm(comm)) return MPI_ERR_COMM;
    if (count < 0) return MPI_ERR_COUNT;
    if (!valid_type(type)) return MPI_ERR_TYPE;
    if (!type_data(type).committed) return MPI_ERR_TYPE;
    return MPI_SUCCESS;
}

// Whether a post to or from `peer` with `tag` may be queued: the proxy
// could only fail it for an invalid rank or tag, which the call path
// reports at once.
bool queueable_peer(MPI_Comm comm, int peer, int tag, bool receive) {
    const CommData& d = comm_data(comm);
    const bool tag_ok = (tag >= 0 && tag <= S().tag_ub) || (receive && tag == MPI_ANY_TAG);
    return !d.inter && tag_ok && ((peer >= 0 && peer < d.size) || (receive && peer == MPI_ANY_SOURCE));
}

// The data of a send, staged in the channel: in the call's own space when
// blocking, in a block owned by the request otherwise.
int do_send(const void* buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, int64_t mode, MPI_Request req,
            const char* fn) {
    if (int e = check_p2p(comm, count, type, fn)) return handle_error(comm, e, fn);
    if (dest == MPI_PROC_NULL) {
        if (req) {
            req->d->complete_locally = true;
            req->d->status = proc_null_status();
        }
        return MPI_SUCCESS;
    }
    const uint64_t bytes = packed_bytes(type, count);
    const bool queueable = queueable_peer(comm, dest, tag, false);
    if (!req && queueable && mode == kSendStandard && bytes <= kCarriedBytes && comm_data(comm).errhandler == MPI_ERRORS_ARE_FATAL) {
        // Small blocking sends go without waiting: their data travels in the post.
        unsigned char carried[kCarriedBytes];
        pack_into(carried, buf, count, type);
        const int64_t args[] = {static_cast<int64_t>(comm->id), dest, tag, mode, 0, static_cast<int64_t>(bytes), 0};
        if (queue_post(Call::Send, args, 7, carried, bytes)) return MPI_SUCCESS;
    }
    CallFrame c(Call::Send);
    uint64_t off = in_place_offset(buf, count, type);
    if (off == 0) {
        if (req) {
            off = alloc_data(bytes);
            req->d->extra_allocations.push_back(off);
        } else {
            off = c.space(bytes);
        }
        pack_into(at(off), buf, count, type);
    }
    const int64_t args[] = {static_cast<int64_t>(comm->id), dest, tag, mode, static_cast<int64_t>(off), static_cast<int64_t>(bytes),
                            req ? static_cast<int64_t>(req->id) : 0};
    if (req) {
        req->d->proxy_id = req->id;
        if (queueable && queue_post(Call::Send, args, 7, nullptr, 0)) return MPI_SUCCESS;
    }
    for (int64_t a : args) c.arg(a);
    return handle_error(comm, c.run(), fn);
}

int do_recv(void* buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm, MPI_Status* status, MPI_Request req,
            const char* fn) {
    if (int e = check_p2p(comm, count, type, fn)) return handle_error(comm, e, fn);
    if (source == MPI_PROC_NULL) {
        if (req) {
            req->d->complete_locally = true;
            req->d->status = proc_null_status();
        } else {
            copy_status(status, proc_null_status());
        }
        return MPI_SUCCESS;
    }
    const uint64_t bytes = packed_bytes(type, count);
    CallFrame c(Call::Recv);
    // Received in place: nothing to unpack (a staged receive's request
    // owns its block, unpacked and freed on completion).
    const uint64_t in_place = in_place_offset(buf, count, type);
    uint64_t off = in_place;
    if (req) {
        if (!in_place) off = alloc_data(bytes);
        RequestData& d = *req->d;
        d.offset = in_place ? 0 : off;
        d.bytes = bytes;
        d.user_buf = buf;
        d.count = count;
        d.type = type;
        d.proxy_id = req->id;
    } else if (!in_place) {
        off = c.space(bytes);
    }
    const int64_t args[] = {static_cast<int64_t>(comm->id), source, tag, static_cast<int64_t>(off), static_cast<int64_t>(bytes),
                            req ? static_cast<int64_t>(req->id) : 0};
    if (req && queueable_peer(comm, source, tag, true) && queue_post(Call::Recv, args, 6, nullptr, 0)) return MPI_SUCCESS;
    for (int64_t a : args) c.arg(a);
    const int rc = c.run();
    if (!req) {
        int64_t words[kStWords];
        for (int i = 0; i < kStWords; ++i) words[i] = c.result(1 + i);
        if (!in_place && (rc == MPI_SUCCESS || rc == MPI_ERR_TRUNCATE))
            unpack_from(at(off), static_cast<uint64_t>(words[kStBytes]), buf, count, type);
        fill_status(status, words);
    }
    return handle_error(comm, rc, fn);
}

int do_probe(int source, int tag, MPI_Comm comm, int* flag, MPI_Status* status, bool blocking, const char* fn) {
    require_init(fn);
    if (!valid_comm(comm)) return handle_error(comm, MPI_ERR_COMM, fn);
    if (source == MPI_PROC_NULL) {
        if (flag) *flag = 1;
        copy_status(status, proc_null_status());
        return MPI_SUCCESS;
    }
    CallFrame c(Call::Probe);
    c.arg(static_cast<int64_t>(comm->id)).arg(source).arg(tag).arg(blocking ? 1 : 0);
    const int rc = c.run();
    int64_t words[kStWords];
    for (int i = 0; i < kStWords; ++i) words[i] = c.result(2 + i);
    if (flag) *flag = static_cast<int>(c.result(1));
    if (c.result(1)) fill_status(status, words);
    return handle_error(comm, rc, fn);
}

// ---- completion ------------------------------------------------------------------------

// Whether the proxy must be asked about this request.
bool needs_proxy(MPI_Request r) {
    if (r == MPI_REQUEST_NULL || !r) return false;
    const RequestData& d = *r->d;
    return d.active && !d.complete_locally && d.proxy_id != 0;
}

// A request that needs nothing from the proxy to complete.
bool locally_done(MPI_Request r) {
    if (r == MPI_REQUEST_NULL || !r) return true;
    const RequestData& d = *r->d;
    return !d.active || d.complete_locally;
}

// The status of a request completed without the proxy.
MPI_Status local_status(MPI_Request r) {
    if (r == MPI_REQUEST_NULL || !r || !r->d->active) return empty_status();
    return r->d->status;
}

// Ends a completed request: a persistent one becomes inactive, any other
// is freed and the handle set to MPI_REQUEST_NULL.
void retire(MPI_Request* r) {
    if (*r == MPI_REQUEST_NULL) return;
    RequestData& d = *(*r)->d;
    for (uint64_t off : d.extra_allocations) free_data(off);
    d.extra_allocations.clear();
    if (d.offset) free_data(d.offset);
    d.offset = 0;
    d.pieces.clear();
    d.complete_locally = false;
    if (persistent(d)) {
        d.active = false;
        d.proxy_id = 0;
        return;
    }
    delete_request(*r);
    *r = MPI_REQUEST_NULL;
}

// Asks the proxy to complete some of the requests (mode), filling
// done[i] and statuses. Returns the MPI error code.
int proxy_complete(CompleteMode mode, int n, MPI_Request* reqs, std::vector<char>& done, std::vector<MPI_Status>& sts, bool& any_pending) {
    std::vector<int> index;  // positions asked about
    for (int i = 0; i < n; ++i)
        if (needs_proxy(reqs[i])) index.push_back(i);
    any_pending = !index.empty();
    if (index.empty()) return MPI_SUCCESS;
    CallFrame c(Call::Complete);
    const uint64_t ids = c.space(index.size() * sizeof(int64_t));
    const uint64_t words = c.space(index.size() * kStWords * sizeof(int64_t));
    auto* idp = static_cast<int64_t*>(at(ids));
    for (size_t k = 0; k < index.size(); ++k) idp[k] = static_cast<int64_t>(reqs[index[k]]->d->proxy_id);
    c.arg(static_cast<int64_t>(mode)).arg(static_cast<int64_t>(index.size())).arg(static_cast<int64_t>(ids)).arg(static_cast<int64_t>(words));
    const int rc = c.run();
    const auto* w = static_cast<const int64_t*>(at(words));
    for (size_t k = 0; k < index.size(); ++k) {
        const int64_t* sw = w + k * kStWords;
        if (!sw[kStDone]) continue;
        const int i = index[k];
        done[i] = 1;
        fill_status(&sts[i], sw);
        finish_request(reqs[i], &sts[i]);
    }
    return rc;
}

}  // namespace

// Completes the shim's side of a request the proxy reports complete.
void finish_request(MPI_Request req, const MPI_Status* st) {
    RequestData& d = *req->d;
    if (d.kind == ReqKind::Recv || d.kind == ReqKind::PersistentRecv) {
        if (!st->_cancelled && d.offset) unpack_from(at(d.offset), st->_ucount, d.user_buf, d.count, d.type);
    } else if (d.kind == ReqKind::Collective) {
        if (d.user_buf && d.offset) {
            if (d.layout)
                copy_layout_out(d.user_buf, static_cast<unsigned char*>(at(d.offset)) - layout_span(d.type, d.count).start, d.count, d.type);
            else
                unpack_from(at(d.offset), packed_bytes(d.type, d.count), d.user_buf, d.count, d.type);
        }
        for (const auto& p : d.pieces) unpack_from(at(p.offset), packed_bytes(p.type, p.count), p.user_buf, p.count, p.type);
    }
    d.status = *st;
    d.complete_locally = true;  // a second Test sees it done without the proxy
    d.proxy_id = 0;
}

}  // namespace ckpt::mpi::shim

namespace {

// Waits for (or tests) requests: the one implementation of every wait and
// test function. `mode` says which.
int complete(CompleteMode mode, int n, MPI_Request* reqs, int* outcount_or_index, int* flag, int* indices, MPI_Status* statuses,
             const char* fn) {
    require_init(fn);
    std::vector<char> done(static_cast<size_t>(n), 0);
    std::vector<MPI_Status> sts(static_cast<size_t>(n));
    // What is already complete without the proxy.
    int active = 0;
    for (int i = 0; i < n; ++i) {
        if (reqs[i] == MPI_REQUEST_NULL || !reqs[i]->d->active) continue;
        ++active;
        if (locally_done(reqs[i])) {
            done[i] = 1;
            sts[i] = local_status(reqs[i]);
        }
    }
    const bool all = mode == CompleteMode::WaitAll || mode == CompleteMode::TestAll;
    const bool any = mode == CompleteMode::WaitAny || mode == CompleteMode::TestAny;
    const bool wait = mode == CompleteMode::WaitAll || mode == CompleteMode::WaitAny || mode == CompleteMode::WaitSome;
    int ndone = 0;
    for (char d : done) ndone += d;
    int rc = MPI_SUCCESS;
    // Ask the proxy unless what is done already satisfies the call.
    const bool satisfied = all ? ndone == active : ndone > 0;
    if (!satisfied && active > 0) {
        bool pending = false;
        CompleteMode ask = mode;
        if (!all && ndone > 0) ask = CompleteMode::TestSome;
        rc = proxy_complete(ask, n, reqs, done, sts, pending);
        ndone = 0;
        for (char d : done) ndone += d;
    }
    (void)wait;
    // Report.
    if (all) {
        const bool complete_all = ndone == active;
        if (flag) *flag = complete_all;
        if (complete_all) {
            for (int i = 0; i < n; ++i) {
                if (statuses && statuses != MPI_STATUSES_IGNORE) statuses[i] = done[i] ? sts[i] : empty_status();
                if (done[i]) retire(&reqs[i]);
            }
        }
        return rc;
    }
    if (any) {
        if (active == 0) {
            *outcount_or_index = MPI_UNDEFINED;
            if (flag) *flag = 1;
            if (statuses && statuses != MPI_STATUSES_IGNORE) *statuses = empty_status();
            return MPI_SUCCESS;
        }
        for (int i = 0; i < n; ++i)
            if (done[i]) {
                *outcount_or_index = i;
                if (flag) *flag = 1;
                if (statuses && statuses != MPI_STATUSES_IGNORE) *statuses = sts[i];
                retire(&reqs[i]);
                // Others the proxy completed too stay complete for later.
                return rc;
            }
        *outcount_or_index = MPI_UNDEFINED;
        if (flag) *flag = 0;
        return rc;
    }
    // some
    if (active == 0) {
        *outcount_or_index = MPI_UNDEFINED;
        return MPI_SUCCESS;
    }
    int k = 0;
    for (int i = 0; i < n; ++i)
        if (done[i]) {
            indices[k] = i;
            if (statuses && statuses != MPI_STATUSES_IGNORE) statuses[k] = sts[i];
            ++k;
            retire(&reqs[i]);
        }
    *outcount_or_index = k;
    return rc;
}

}  // namespace

extern "C" {

int PMPI_Send(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm) {
    return do_send(buf, count, t, dest, tag, comm, kSendStandard, nullptr, "MPI_Send");
}
int PMPI_Ssend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm) {
    return do_send(buf, count, t, dest, tag, comm, kSendSync, nullptr, "MPI_Ssend");
}
int PMPI_Rsend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm) {
    return do_send(buf, count, t, dest, tag, comm, kSendReady, nullptr, "MPI_Rsend");
}
int PMPI_Bsend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm) {
    return do_send(buf, count, t, dest, tag, comm, kSendBuffered, nullptr, "MPI_Bsend");
}

namespace {
int isend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, int64_t mode, MPI_Request* r, const char* fn) {
    MPI_Request req = new_request(ReqKind::Send);
    const int rc = do_send(buf, count, t, dest, tag, comm, mode, req, fn);
    if (rc != MPI_SUCCESS) {
        retire(&req);
        *r = MPI_REQUEST_NULL;
        return rc;
    }
    *r = req;
    return rc;
}
}  // namespace

int PMPI_Isend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return isend(buf, count, t, dest, tag, comm, kSendStandard, r, "MPI_Isend");
}
int PMPI_Issend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return isend(buf, count, t, dest, tag, comm, kSendSync, r, "MPI_Issend");
}
int PMPI_Irsend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return isend(buf, count, t, dest, tag, comm, kSendReady, r, "MPI_Irsend");
}
int PMPI_Ibsend(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return isend(buf, count, t, dest, tag, comm, kSendBuffered, r, "MPI_Ibsend");
}

int PMPI_Recv(void* buf, int count, MPI_Datatype t, int source, int tag, MPI_Comm comm, MPI_Status* status) {
    return do_recv(buf, count, t, source, tag, comm, status, nullptr, "MPI_Recv");
}

int PMPI_Irecv(void* buf, int count, MPI_Datatype t, int source, int tag, MPI_Comm comm, MPI_Request* r) {
    MPI_Request req = new_request(ReqKind::Recv);
    const int rc = do_recv(buf, count, t, source, tag, comm, nullptr, req, "MPI_Irecv");
    if (rc != MPI_SUCCESS) {
        retire(&req);
        *r = MPI_REQUEST_NULL;
        return rc;
    }
    *r = req;
    return rc;
}

int PMPI_Sendrecv(const void* sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag, void* recvbuf, int recvcount,
                  MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm, MPI_Status* status) {
    MPI_Request rr, sr;
    int rc = PMPI_Irecv(recvbuf, recvcount, recvtype, source, recvtag, comm, &rr);
    if (rc != MPI_SUCCESS) return rc;
    rc = PMPI_Isend(sendbuf, sendcount, sendtype, dest, sendtag, comm, &sr);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Request both[2] = {rr, sr};
    MPI_Status sts[2];
    rc = complete(CompleteMode::WaitAll, 2, both, nullptr, nullptr, nullptr, sts, "MPI_Sendrecv");
    copy_status(status, sts[0]);
    return handle_error(comm, rc, "MPI_Sendrecv");
}

int PMPI_Sendrecv_replace(void* buf, int count, MPI_Datatype type, int dest, int sendtag, int source, int recvtag, MPI_Comm comm,
                          MPI_Status* status) {
    require_init("MPI_Sendrecv_replace");
    if (!valid_type(type)) return handle_error(comm, MPI_ERR_TYPE, "MPI_Sendrecv_replace");
    // The outgoing data is packed before the receive may overwrite it.
    const uint64_t bytes = packed_bytes(type, count);
    std::vector<unsigned char> packed(bytes);
    pack_into(packed.data(), buf, count, type);
    return PMPI_Sendrecv(packed.data(), static_cast<int>(bytes), MPI_BYTE, dest, sendtag, buf, count, type, source, recvtag, comm, status);
}

int PMPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status* status) {
    return do_probe(source, tag, comm, nullptr, status, true, "MPI_Probe");
}
int PMPI_Iprobe(int source, int tag, MPI_Comm comm, int* flag, MPI_Status* status) {
    return do_probe(source, tag, comm, flag, status, false, "MPI_Iprobe");
}

// ---- matched probes ----------------------------------------------------------------------
// MPI_Mprobe takes the message it matched off the network at once (into
// the program's memory, so a checkpoint keeps it with the program): no
// later receive can match it, as the standard asks, and MPI_Mrecv only
// copies it out. (Exact for a program whose other threads do not receive
// on the same communicator between the probe and its taking.)
namespace {
struct MatchedMessage {
    MPI_Comm comm;
    std::vector<unsigned char> data;
    MPI_Status status;
};

int mprobe(int source, int tag, MPI_Comm comm, int* flag, MPI_Message* message, MPI_Status* status, const char* fn) {
    require_init(fn);
    if (!message) return handle_error(comm, MPI_ERR_ARG, fn);
    if (flag) *flag = 0;
    if (source == MPI_PROC_NULL) {
        if (flag) *flag = 1;
        *message = MPI_MESSAGE_NO_PROC;
        copy_status(status, proc_null_status());
        return MPI_SUCCESS;
    }
    MPI_Status probed{};
    int found = 1;
    int rc = do_probe(source, tag, comm, flag ? &found : nullptr, &probed, !flag, fn);
    if (rc != MPI_SUCCESS || !found) return rc;
    auto* m = new MatchedMessage{comm, std::vector<unsigned char>(probed._ucount), {}};
    rc = do_recv(m->data.data(), static_cast<int>(m->data.size()), MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm, &m->status, nullptr, fn);
    if (rc != MPI_SUCCESS) {
        delete m;
        return rc;
    }
    *message = new ompi_message_t{new_id(), m};
    if (flag) *flag = 1;
    copy_status(status, m->status);
    return MPI_SUCCESS;
}

// Copies a matched message into buf; its status in *st.
int take_matched(void* buf, int count, MPI_Datatype type, MPI_Message* message, MPI_Status& st, const char* fn) {
    require_init(fn);
    if (!message || *message == MPI_MESSAGE_NULL || !*message) return handle_error(MPI_COMM_WORLD, MPI_ERR_REQUEST, fn);
    if (*message == MPI_MESSAGE_NO_PROC) {
        *message = MPI_MESSAGE_NULL;
        st = proc_null_status();
        return MPI_SUCCESS;
    }
    auto* m = static_cast<MatchedMessage*>((*message)->d);
    if (int e = check_p2p(m->comm, count, type, fn)) return handle_error(m->comm, e, fn);
    const uint64_t capacity = packed_bytes(type, count), n = std::min<uint64_t>(capacity, m->data.size());
    unpack_from(m->data.data(), n, buf, count, type);
    st = m->status;  // (its count is the whole message's, truncated or not, as Open MPI reports it)
    const MPI_Comm comm = m->comm;
    const bool truncated = m->data.size() > capacity;
    delete m;
    delete *message;
    *message = MPI_MESSAGE_NULL;
    if (!truncated) return MPI_SUCCESS;
    st.MPI_ERROR = MPI_ERR_TRUNCATE;
    return handle_error(comm, MPI_ERR_TRUNCATE, fn);
}
}  // namespace

int PMPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message* message, MPI_Status* status) {
    return mprobe(source, tag, comm, nullptr, message, status, "MPI_Mprobe");
}
int PMPI_Improbe(int source, int tag, MPI_Comm comm, int* flag, MPI_Message* message, MPI_Status* status) {
    return mprobe(source, tag, comm, flag, message, status, "MPI_Improbe");
}
int PMPI_Mrecv(void* buf, int count, MPI_Datatype type, MPI_Message* message, MPI_Status* status) {
    MPI_Status st{};
    const int rc = take_matched(buf, count, type, message, st, "MPI_Mrecv");
    copy_status(status, st);
    return rc;
}
int PMPI_Imrecv(void* buf, int count, MPI_Datatype type, MPI_Message* message, MPI_Request* request) {
    MPI_Status st{};
    const int rc = take_matched(buf, count, type, message, st, "MPI_Imrecv");
    if (rc != MPI_SUCCESS && rc != MPI_ERR_TRUNCATE) return rc;
    // Complete already: its wait or test finds it done without the proxy.
    MPI_Request req = new_request(ReqKind::Recv);
    req->d->complete_locally = true;
    req->d->status = st;
    *request = req;
    return rc;
}

int PMPI_Get_count(const MPI_Status* status, MPI_Datatype type, int* count) {
    if (!valid_type(type)) return MPI_ERR_TYPE;
    const uint64_t size = packed_bytes(type, 1);
    if (size == 0) {
        *count = status->_ucount == 0 ? 0 : MPI_UNDEFINED;
        return MPI_SUCCESS;
    }
    *count = status->_ucount % size ? MPI_UNDEFINED : static_cast<int>(status->_ucount / size);
    return MPI_SUCCESS;
}

int PMPI_Get_elements_x(const MPI_Status* status, MPI_Datatype type, MPI_Count* count) {
    if (!valid_type(type)) return MPI_ERR_TYPE;
    *count = static_cast<MPI_Count>(elements_in(type, status->_ucount));
    return MPI_SUCCESS;
}

int PMPI_Get_elements(const MPI_Status* status, MPI_Datatype type, int* count) {
    MPI_Count c = 0;
    const int rc = PMPI_Get_elements_x(status, type, &c);
    *count = static_cast<int>(c);
    return rc;
}

int PMPI_Status_set_elements_x(MPI_Status* status, MPI_Datatype type, MPI_Count count) {
    if (!valid_type(type)) return MPI_ERR_TYPE;
    status->_ucount = static_cast<size_t>(count) * packed_bytes(type, 1);
    return MPI_SUCCESS;
}
int PMPI_Status_set_elements(MPI_Status* status, MPI_Datatype type, int count) { return PMPI_Status_set_elements_x(status, type, count); }

int PMPI_Status_set_cancelled(MPI_Status* status, int flag) {
    status->_cancelled = flag;
    return MPI_SUCCESS;
}
int PMPI_Test_cancelled(const MPI_Status* status, int* flag) {
    *flag = status->_cancelled;
    return MPI_SUCCESS;
}

int PMPI_Wait(MPI_Request* r, MPI_Status* status) {
    return complete(CompleteMode::WaitAll, 1, r, nullptr, nullptr, nullptr, status, "MPI_Wait");
}
int PMPI_Test(MPI_Request* r, int* flag, MPI_Status* status) {
    return complete(CompleteMode::TestAll, 1, r, nullptr, flag, nullptr, status, "MPI_Test");
}
int PMPI_Waitall(int n, MPI_Request* r, MPI_Status* sts) {
    return complete(CompleteMode::WaitAll, n, r, nullptr, nullptr, nullptr, sts, "MPI_Waitall");
}
int PMPI_Testall(int n, MPI_Request* r, int* flag, MPI_Status* sts) {
    return complete(CompleteMode::TestAll, n, r, nullptr, flag, nullptr, sts, "MPI_Testall");
}
int PMPI_Waitany(int n, MPI_Request* r, int* index, MPI_Status* st) {
    return complete(CompleteMode::WaitAny, n, r, index, nullptr, nullptr, st, "MPI_Waitany");
}
int PMPI_Testany(int n, MPI_Request* r, int* index, int* flag, MPI_Status* st) {
    return complete(CompleteMode::TestAny, n, r, index, flag, nullptr, st, "MPI_Testany");
}
int PMPI_Waitsome(int n, MPI_Request* r, int* outcount, int* indices, MPI_Status* sts) {
    return complete(CompleteMode::WaitSome, n, r, outcount, nullptr, indices, sts, "MPI_Waitsome");
}
int PMPI_Testsome(int n, MPI_Request* r, int* outcount, int* indices, MPI_Status* sts) {
    return complete(CompleteMode::TestSome, n, r, outcount, nullptr, indices, sts, "MPI_Testsome");
}

int PMPI_Request_get_status(MPI_Request r, int* flag, MPI_Status* status) {
    MPI_Request copy = r;
    // Tests without freeing: ask, then leave the request as it is.
    if (locally_done(r)) {
        *flag = 1;
        copy_status(status, local_status(r));
        return MPI_SUCCESS;
    }
    std::vector<char> done(1, 0);
    std::vector<MPI_Status> sts(1);
    bool pending = false;
    const int rc = proxy_complete(CompleteMode::TestAll, 1, &copy, done, sts, pending);
    *flag = done[0];
    if (done[0]) copy_status(status, sts[0]);
    return rc;
}

int PMPI_Cancel(MPI_Request* r) {
    require_init("MPI_Cancel");
    if (*r == MPI_REQUEST_NULL) return MPI_ERR_REQUEST;
    if (!needs_proxy(*r)) return MPI_SUCCESS;
    CallFrame c(Call::Cancel);
    c.arg(static_cast<int64_t>((*r)->d->proxy_id));
    return c.run();
}

int PMPI_Request_free(MPI_Request* r) {
    require_init("MPI_Request_free");
    if (*r == MPI_REQUEST_NULL) return MPI_ERR_REQUEST;
    if (needs_proxy(*r)) {
        // The operation goes on; the proxy forgets it when it completes. Its
        // channel memory is given up with it (a receive's data is lost, as
        // MPI allows: nobody can wait for it).
        CallFrame c(Call::RequestFree);
        c.arg(static_cast<int64_t>((*r)->d->proxy_id));
        c.run();
        (*r)->d->offset = 0;
        (*r)->d->extra_allocations.clear();
    }
    RequestData& d = *(*r)->d;
    d.active = false;
    d.kind = ReqKind::Send;  // no longer persistent: retire frees it
    retire(r);
    return MPI_SUCCESS;
}

// ---- persistent requests --------------------------------------------------------------
namespace {
int persistent_init(ReqKind kind, const void* buf, int count, MPI_Datatype t, int peer, int tag, MPI_Comm comm, int64_t mode,
                    MPI_Request* r) {
    require_init("MPI_Send_init");
    MPI_Request req = new_request(kind);
    RequestData& d = *req->d;
    d.active = false;
    d.p_buf = buf;
    d.user_buf = const_cast<void*>(buf);
    d.count = count;
    d.type = t;
    d.p_dest = peer;
    d.p_tag = tag;
    d.p_comm = comm;
    d.p_mode = mode;
    *r = req;
    return MPI_SUCCESS;
}
}  // namespace

int PMPI_Send_init(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return persistent_init(ReqKind::PersistentSend, buf, count, t, dest, tag, comm, kSendStandard, r);
}
int PMPI_Ssend_init(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return persistent_init(ReqKind::PersistentSend, buf, count, t, dest, tag, comm, kSendSync, r);
}
int PMPI_Rsend_init(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return persistent_init(ReqKind::PersistentSend, buf, count, t, dest, tag, comm, kSendReady, r);
}
int PMPI_Bsend_init(const void* buf, int count, MPI_Datatype t, int dest, int tag, MPI_Comm comm, MPI_Request* r) {
    return persistent_init(ReqKind::PersistentSend, buf, count, t, dest, tag, comm, kSendBuffered, r);
}
int PMPI_Recv_init(void* buf, int count, MPI_Datatype t, int source, int tag, MPI_Comm comm, MPI_Request* r) {
    return persistent_init(ReqKind::PersistentRecv, buf, count, t, source, tag, comm, 0, r);
}

int PMPI_Start(MPI_Request* r) {
    require_init("MPI_Start");
    MPI_Request req = *r;
    if (req == MPI_REQUEST_NULL || !persistent(*req->d)) return MPI_ERR_REQUEST;
    RequestData& d = *req->d;
    if (d.active) return MPI_ERR_REQUEST;
    d.active = true;
    d.complete_locally = false;
    // A fresh id for each start: the proxy forgets completed operations.
    req->id = new_id();
    if (d.kind == ReqKind::PersistentSend) return do_send(d.p_buf, d.count, d.type, d.p_dest, d.p_tag, d.p_comm, d.p_mode, req, "MPI_Start");
    return do_recv(d.user_buf, d.count, d.type, d.p_dest, d.p_tag, d.p_comm, nullptr, req, "MPI_Start");
}

int PMPI_Startall(int n, MPI_Request* r) {
    for (int i = 0; i < n; ++i)
        if (int rc = PMPI_Start(&r[i])) return rc;
    return MPI_SUCCESS;
}

int PMPI_Buffer_attach(void*, int) { return MPI_SUCCESS; }
int PMPI_Buffer_detach(void* buffer, int* size) {
    *static_cast<void**>(buffer) = nullptr;
    *size = 0;
    return MPI_SUCCESS;
}

}  // extern "C"
