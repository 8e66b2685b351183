// mqr (LAppS): q = mqr.create(name[, capacity[, max_bytes]]); q:post(obj); q:recv();
// q:try_recv(). Objects travel as CBOR, so any value the cbor module encodes (plain tables,
// nljson objects, strings, numbers) arrives as the same value in the other instance.
//
// post on a full queue (in items or in bytes) and recv on an empty one suspend the calling
// coroutine (the worker goes on serving everyone else); where nothing may suspend (onStart,
// init) post returns false, "mqr: queue '<name>' is full (...)" and recv raises an error.
// An item larger than the queue's byte bound is refused at once. When the instance is
// asked to stop, a suspended recv returns nil and a suspended post returns false.
//
// recv takes a batch of items per locked step into its handle (QueueBatch, owned by the
// instance as a resource), so what it took and had not handed to Lua goes back to the
// queue when the handle is collected or the instance's state goes.
#include <lua.hpp>

#include <memory>
#include <string>

#include "core/message-queue.h"
#include "core/service-host.h"
#include "embedded-lua.h"
#include "lua/api-lapps.h"
#include "lua/lua-instance.h"
#include "lua/lua-value.h"

namespace lapps {

namespace {

constexpr const char* kQueueMeta = "lapps.mqr.queue";
// How long a recv that found the queue empty watches it before it suspends.
constexpr uint64_t kRecvSpinNs = 20000;

// A queue as Lua holds it (the userdata's block). `batch` holds the items its recv took from
// the queue and has not returned yet; made by the first recv.
struct QueueHandle {
  MessageQueue* q;
  class BatchResource* batch;
};

// The handle's batch is owned by the instance, so a state that goes away (stop, recycle,
// even one closed without running finalizers) gives the items it had not handed to Lua back
// to the front of the queue.
class BatchResource final : public InstanceResource {
 public:
  BatchResource(MessageQueue* q, QueueHandle* owner) : batch(q), owner_(owner) {}
  // The handle's block is alive whenever this goes (before the state is closed, or from
  // the handle's own __gc).
  ~BatchResource() override { owner_->batch = nullptr; }
  QueueBatch batch;

 private:
  QueueHandle* owner_;
};

LuaInstance* self(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

QueueHandle* checkHandle(lua_State* L, int idx) {
  return static_cast<QueueHandle*>(luaL_checkudata(L, idx, kQueueMeta));
}

MessageQueue* checkQueue(lua_State* L, int idx) {
  return checkHandle(L, idx)->q;
}

// Notification from the queue: there may be an item (or room) now; the coroutine tries again.
std::function<void()> retryNotifier(LuaInstance* inst, uint64_t id,
                                    const std::shared_ptr<uint64_t>& hook) {
  uint64_t gen = inst->generation();
  return [inst, id, gen, hook] {
    if (gen != inst->generation()) return;
    inst->removeStopHook(*hook);
    inst->wake(id, [](lua_State* co) {
      lua_pushinteger(co, 0);
      return 1;
    });
  };
}

// Suspends the coroutine registered as wait `id`, whose waiter `key` is in q. Stopping the
// instance withdraws the waiter and resumes the coroutine with nil.
int suspendOn(lua_State* L, LuaInstance* inst, MessageQueue* q, uint64_t id, uint64_t key,
              const std::shared_ptr<uint64_t>& hook) {
  *hook = inst->addStopHook([inst, q, id, key] {
    q->cancel(key);
    inst->wake(id, [](lua_State* co) {
      lua_pushnil(co);
      return 1;
    });
  });
  return lua_yield(L, 0);
}

// The encoded item of the post being made: one buffer per thread, so a post allocates
// nothing once it has grown to the size of the items.
std::string& postBuffer() {
  thread_local std::string buf;
  buf.clear();
  return buf;
}

// __post(q, obj) -> 1 (posted) | 0 (woken: try again) | nil, err
int rawPost(lua_State* L) {
  LuaInstance* inst = self(L);
  MessageQueue* q = checkQueue(L, 1);
  if (lua_gettop(L) < 2) return luaL_error(L, "mqr: post needs a value");
  std::string& bytes = postBuffer();
  std::string err;
  if (!encodeCbor(L, 2, bytes, err)) {
    lua_pushnil(L);
    lua_pushfstring(L, "mqr: cannot post this value: %s", err.c_str());
    return 2;
  }
  if (bytes.size() + MessageQueue::kItemOverhead > q->maxBytes()) {
    lua_pushnil(L);
    lua_pushfstring(L, "mqr: item of %f bytes is larger than queue '%s' takes (%f bytes)",
                    lua_Number(bytes.size()), q->name().c_str(), lua_Number(q->maxBytes()));
    return 2;
  }
  // First without a waiter: a queue with room costs no registration.
  if (q->post(bytes.data(), bytes.size(), nullptr, nullptr, nullptr) ==
      MessageQueue::PostResult::Posted) {
    lua_pushinteger(L, 1);
    return 1;
  }
  if (inst->stopRequested() || !inst->canSuspend(L)) {
    lua_pushnil(L);
    lua_pushfstring(L, "mqr: queue '%s' is full (%d items, %f bytes at most)", q->name().c_str(),
                    int(q->capacity()), lua_Number(q->maxBytes()));
    return 2;
  }
  uint64_t id = inst->beginWait(L);
  auto hook = std::make_shared<uint64_t>(0);
  uint64_t key = 0;
  // TooBig was ruled out above, so a refused post waits for room.
  if (q->post(bytes.data(), bytes.size(), inst->host(), retryNotifier(inst, id, hook), &key) ==
      MessageQueue::PostResult::Posted) {
    inst->cancelWait(id);
    lua_pushinteger(L, 1);
    return 1;
  }
  return suspendOn(L, inst, q, id, key, hook);
}

// Pushes 1 and the oldest item of the handle's batch (not empty) as a Lua value.
int deliver(lua_State* L, QueueBatch& batch) {
  // The item leaves the batch first, its block freed even if decoding raises an error.
  struct Owned {
    MessageQueue::Item item;
    ~Owned() { item.release(); }
  } owned{batch.pop()};
  std::string err;
  lua_pushinteger(L, 1);
  if (!pushCbor(L, reinterpret_cast<const uint8_t*>(owned.item.data()), owned.item.size, err)) {
    return luaL_error(L, "mqr: corrupt item: %s", err.c_str());
  }
  return 2;
}

QueueBatch& batchOf(LuaInstance* inst, QueueHandle* h) {
  if (!h->batch) {
    h->batch = new BatchResource(h->q, h);
    inst->adopt(h->batch);
  }
  return h->batch->batch;
}

// __recv(q, wait) -> 1, value | 0 (woken: try again) | nil (empty and not waiting, or
// stopping). A waiting recv takes a batch of items at once; try_recv takes one.
int rawRecv(lua_State* L) {
  LuaInstance* inst = self(L);
  QueueHandle* h = checkHandle(L, 1);
  const bool wait = lua_toboolean(L, 2) && !inst->stopRequested();
  // Where nothing may suspend, recv is an error even when an item is there (try_recv is
  // the call for those places).
  if (wait && !inst->canSuspend(L)) checkCanSuspend(L, inst, "mqr: recv");
  if (h->batch && !h->batch->batch.empty()) return deliver(L, h->batch->batch);
  MessageQueue* q = h->q;
  QueueBatch& batch = batchOf(inst, h);
  if (q->take(batch, wait ? MessageQueue::kBatchItems : 1, nullptr, nullptr, nullptr)) {
    return deliver(L, batch);
  }
  if (!wait) {
    lua_pushnil(L);
    return 1;
  }
  // A producer that is still posting usually brings items within microseconds: watching
  // for them a little is far cheaper than a suspension and a wake-up through the loop.
  if (q->spinForItems(kRecvSpinNs) &&
      q->take(batch, MessageQueue::kBatchItems, nullptr, nullptr, nullptr)) {
    return deliver(L, batch);
  }
  uint64_t id = inst->beginWait(L);
  auto hook = std::make_shared<uint64_t>(0);
  uint64_t key = 0;
  if (!q->take(batch, MessageQueue::kBatchItems, inst->host(), retryNotifier(inst, id, hook),
               &key)) {
    return suspendOn(L, inst, q, id, key, hook);
  }
  inst->cancelWait(id);
  return deliver(L, batch);
}

// __gc: the batch's items go back to the queue.
int queueGc(lua_State* L) {
  auto* h = static_cast<QueueHandle*>(lua_touserdata(L, 1));
  if (h->batch) self(L)->drop(h->batch);
  return 0;
}

int queueSize(lua_State* L) {
  lua_pushinteger(L, lua_Integer(checkQueue(L, 1)->size()));
  return 1;
}

int queueName(lua_State* L) {
  const std::string& n = checkQueue(L, 1)->name();
  lua_pushlstring(L, n.data(), n.size());
  return 1;
}

// mqr.create(name[, capacity[, max_bytes]]) (dot or colon call)
int mqrCreate(lua_State* L) {
  LuaInstance* inst = self(L);
  int base = lua_istable(L, 1) ? 2 : 1;
  size_t len;
  const char* name = lua_tolstring(L, base, &len);
  if (!name || len == 0) return luaL_error(L, "mqr.create: queue name must be a non-empty string");
  lua_Number cap = luaL_optnumber(L, base + 1, lua_Number(MessageQueues::kDefaultCapacity));
  if (!(cap >= 1 && cap <= 1e9)) return luaL_error(L, "mqr.create: capacity must be 1..1e9");
  // The server's limits.mqr_max_bytes is both the default and the most a service may ask.
  const lua_Number serverMax = lua_Number(inst->shared()->mqrMaxBytes());
  lua_Number maxBytes = luaL_optnumber(L, base + 2, serverMax);
  if (!(maxBytes >= 1)) return luaL_error(L, "mqr.create: max_bytes must be at least 1");
  if (maxBytes > serverMax) maxBytes = serverMax;
  MessageQueue* q =
      inst->shared()->queues().get(std::string(name, len), size_t(cap), size_t(maxBytes));
  auto* ud = static_cast<QueueHandle*>(lua_newuserdata(L, sizeof(QueueHandle)));
  ud->q = q;
  ud->batch = nullptr;
  luaL_getmetatable(L, kQueueMeta);
  lua_setmetatable(L, -2);
  return 1;
}

}  // namespace

int pushMqr(lua_State* L, LuaInstance* instance) {
  initValueModel(L);
  if (luaL_newmetatable(L, kQueueMeta)) {
    lua_newtable(L);  // methods
    if (embedded::kMqrQueue.load(L) != 0) lua_error(L);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, rawPost, 1);
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, rawRecv, 1);
    lua_pushcfunction(L, queueSize);
    lua_pushcfunction(L, queueName);
    lua_call(L, 5, 0);
    lua_setfield(L, -2, "__index");
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, queueGc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, mqrCreate, 1);
  lua_setfield(L, -2, "create");
  return 1;
}

}  // namespace lapps
