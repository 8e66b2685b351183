// Fixed-size records in blocks of their own (core/slab.h): the worker's connection records.
#include <cstdint>
#include <set>
#include <vector>

#include "core/slab.h"
#include "test.h"

using namespace lapps;

namespace {

struct Record {
  explicit Record(uint64_t v) : value(v) {}
  uint64_t value;
  uint64_t pad[15] = {};  // 136 bytes, the size of a connection record
  uint32_t slabBlock = 0;
};

}  // namespace

TEST("slab: records are distinct, keep their values, and fill blocks before new ones") {
  Slab<Record> slab;
  const uint32_t per = Slab<Record>::kPerBlock;
  std::vector<Record*> made;
  for (uint32_t i = 0; i < per * 3; ++i) made.push_back(slab.make(i));
  CHECK_EQ(slab.blocks(), size_t(3));
  CHECK_EQ(std::set<Record*>(made.begin(), made.end()).size(), made.size());
  for (uint32_t i = 0; i < made.size(); ++i) CHECK_EQ(made[i]->value, uint64_t(i));
  // A freed record is the next one made: no new block while one has room.
  Record* freed = made[per + 5];
  slab.destroy(freed);
  Record* again = slab.make(uint64_t(99));
  CHECK(again == freed);
  CHECK_EQ(again->value, uint64_t(99));
  CHECK_EQ(slab.blocks(), size_t(3));
  for (Record* r : made) slab.destroy(r);
}

TEST("slab: release frees only the blocks that hold no record, and making goes on after it") {
  Slab<Record> slab;
  const uint32_t per = Slab<Record>::kPerBlock;
  std::vector<Record*> made;
  for (uint32_t i = 0; i < per * 3; ++i) made.push_back(slab.make(i));
  // Empty the first and the last block; keep one record in the middle one.
  for (uint32_t i = 0; i < per; ++i) slab.destroy(made[i]);
  for (uint32_t i = per; i < 2 * per - 1; ++i) slab.destroy(made[i]);
  for (uint32_t i = 2 * per; i < 3 * per; ++i) slab.destroy(made[i]);
  CHECK_EQ(slab.release(), size_t(2) * Slab<Record>::kBlockBytes);
  CHECK_EQ(slab.blocks(), size_t(1));
  CHECK_EQ(made[2 * per - 1]->value, uint64_t(2 * per - 1));
  CHECK_EQ(slab.release(), size_t(0));  // nothing more to give back
  // The kept block's free records first, then a new block in a released block's place.
  std::vector<Record*> more;
  for (uint32_t i = 0; i < per + 1; ++i) more.push_back(slab.make(i));
  CHECK_EQ(slab.blocks(), size_t(2));
  for (uint32_t i = 0; i < more.size(); ++i) CHECK_EQ(more[i]->value, uint64_t(i));
  for (Record* r : more) slab.destroy(r);
  slab.destroy(made[2 * per - 1]);
  CHECK_EQ(slab.release(), size_t(2) * Slab<Record>::kBlockBytes);
  CHECK_EQ(slab.blocks(), size_t(0));
}
