// A bounded, non-allocating RFC 8949 decoder. It walks one data item by recursive descent
// and reports what it finds to a visitor; it never allocates and never trusts a declared
// length further than the bytes actually present, so a header announcing 2^60 bytes or
// items is a clean "truncated" error. Nesting is bounded by a depth limit; tags are
// consumed in a loop, so a long tag chain cannot grow the C stack.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lapps {

enum class CborErrc : uint8_t {
  kOk = 0,
  kTruncated,          // input ends inside an item
  kTrailingBytes,      // bytes after the single top-level item
  kReservedInfo,       // additional information 28..30
  kBadIndefinite,      // indefinite length on a major type that has none
  kBadChunk,           // chunk of an indefinite string: wrong type or itself indefinite
  kUnexpectedBreak,    // 0xFF outside an indefinite container
  kInvalidUtf8,        // text string is not UTF-8
  kUnsupportedBignum,  // tags 2 and 3
  kUnsupportedSimple,  // simple values other than false/true/null/undefined
  kTooDeep,            // nesting over the depth limit
  kOddIndefiniteMap,   // break after a key with no value
  kVisitor,            // the visitor refused the item (its own message explains why)
};

// Message for an error code ("truncated", "unsupported bignum", ...).
const char* cborErrorMessage(CborErrc code);

struct CborError {
  CborErrc code = CborErrc::kOk;
  size_t offset = 0;  // byte offset of the item (or byte) that failed
};

// Receives the items in document order. Every callback returns false to stop decoding
// (reported as CborErrc::kVisitor at the current offset). The defaults accept everything,
// so a bare CborVisitor validates well-formedness.
//
// Containers: beginArray(count) is followed by each element and arrayItem(index) after
// it (index from 0); then endArray(). Maps: beginMap(count), then per entry the key,
// mapKey(), the value, mapValue(); then endMap(). count is -1 for indefinite lengths and
// is otherwise never larger than the bytes left, so it is a safe allocation hint.
// Indefinite strings arrive as beginString(text), chunk(...) per chunk, endString().
class CborVisitor {
 public:
  virtual ~CborVisitor() = default;
  virtual bool onUnsigned(uint64_t) { return true; }
  // The value is -1 - n (n up to 2^64-1, so down to -2^64).
  virtual bool onNegative(uint64_t) { return true; }
  virtual bool onDouble(double) { return true; }
  virtual bool onBool(bool) { return true; }
  // null and undefined.
  virtual bool onNull() { return true; }
  virtual bool onString(bool /*text*/, const uint8_t*, size_t) { return true; }
  virtual bool beginString(bool /*text*/) { return true; }
  virtual bool chunk(const uint8_t*, size_t) { return true; }
  virtual bool endString() { return true; }
  virtual bool beginArray(int64_t /*count*/) { return true; }
  virtual bool arrayItem(size_t /*index*/) { return true; }
  virtual bool endArray() { return true; }
  virtual bool beginMap(int64_t /*count*/) { return true; }
  virtual bool mapKey() { return true; }
  virtual bool mapValue() { return true; }
  virtual bool endMap() { return true; }
};

inline constexpr int kCborDefaultDepth = 64;

class CborReader {
 public:
  CborReader(const uint8_t* data, size_t size, int maxDepth = kCborDefaultDepth)
      : p_(data), n_(size), maxDepth_(maxDepth) {}

  // Decodes exactly one item spanning the whole input.
  CborError readDocument(CborVisitor& v);
  // Decodes the next item and leaves the position after it (for sequences).
  CborError readItem(CborVisitor& v);

  size_t offset() const { return pos_; }
  bool atEnd() const { return pos_ == n_; }

 private:
  struct Head {
    uint8_t major;
    uint8_t info;
    uint64_t arg;  // value, length or count; unused when indefinite
    bool indefinite;
  };
  CborErrc readHead(Head& h);
  CborErrc item(CborVisitor& v, int depth);
  CborErrc indefiniteString(CborVisitor& v, bool text);
  CborErrc simple(CborVisitor& v, const Head& h, size_t at);
  CborErrc fail(CborErrc code, size_t at) {
    errOffset_ = at;
    return code;
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  size_t errOffset_ = 0;
  int maxDepth_;
};

}  // namespace lapps
