#include "codec/cbor-reader.h"

#include <cmath>
#include <cstring>

#include "protocol/utf8-validator.h"

namespace lapps {

const char* cborErrorMessage(CborErrc code) {
  switch (code) {
    case CborErrc::kOk:
      return "ok";
    case CborErrc::kTruncated:
      return "truncated";
    case CborErrc::kTrailingBytes:
      return "trailing bytes";
    case CborErrc::kReservedInfo:
      return "reserved additional information";
    case CborErrc::kBadIndefinite:
      return "invalid indefinite length";
    case CborErrc::kBadChunk:
      return "invalid chunk in indefinite-length string";
    case CborErrc::kUnexpectedBreak:
      return "unexpected break";
    case CborErrc::kInvalidUtf8:
      return "invalid UTF-8 in text string";
    case CborErrc::kUnsupportedBignum:
      return "unsupported bignum";
    case CborErrc::kUnsupportedSimple:
      return "unsupported simple value";
    case CborErrc::kTooDeep:
      return "nesting too deep";
    case CborErrc::kOddIndefiniteMap:
      return "map key without value";
    case CborErrc::kVisitor:
      return "rejected";
  }
  return "unknown error";
}

namespace {

constexpr uint8_t kBreak = 0xFF;

double halfToDouble(uint16_t h) {
  int exp = (h >> 10) & 0x1F;
  int mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp != 31) {
    v = std::ldexp(mant + 1024, exp - 25);
  } else {
    v = mant == 0 ? INFINITY : NAN;
  }
  return (h & 0x8000) ? -v : v;
}

}  // namespace

CborErrc CborReader::readHead(Head& h) {
  size_t start = pos_;
  if (pos_ >= n_) return fail(CborErrc::kTruncated, start);
  uint8_t ib = p_[pos_++];
  h.major = ib >> 5;
  h.info = ib & 0x1F;
  h.indefinite = false;
  h.arg = 0;
  if (h.info < 24) {
    h.arg = h.info;
    return CborErrc::kOk;
  }
  if (h.info == 31) {
    h.indefinite = true;
    return CborErrc::kOk;
  }
  if (h.info > 27) return fail(CborErrc::kReservedInfo, start);
  size_t len = size_t{1} << (h.info - 24);
  if (n_ - pos_ < len) return fail(CborErrc::kTruncated, start);
  for (size_t i = 0; i < len; ++i) h.arg = (h.arg << 8) | p_[pos_ + i];
  pos_ += len;
  return CborErrc::kOk;
}

CborError CborReader::readItem(CborVisitor& v) {
  CborErrc e = item(v, 0);
  return {e, e == CborErrc::kOk ? pos_ : errOffset_};
}

CborError CborReader::readDocument(CborVisitor& v) {
  CborError e = readItem(v);
  if (e.code == CborErrc::kOk && pos_ != n_) return {CborErrc::kTrailingBytes, pos_};
  return e;
}

CborErrc CborReader::indefiniteString(CborVisitor& v, bool text) {
  if (!v.beginString(text)) return fail(CborErrc::kVisitor, pos_);
  uint8_t major = text ? 3 : 2;
  for (;;) {
    if (pos_ >= n_) return fail(CborErrc::kTruncated, pos_);
    if (p_[pos_] == kBreak) {
      ++pos_;
      break;
    }
    size_t at = pos_;
    Head h;
    if (CborErrc e = readHead(h); e != CborErrc::kOk) return e;
    if (h.major != major || h.indefinite) return fail(CborErrc::kBadChunk, at);
    if (n_ - pos_ < h.arg) return fail(CborErrc::kTruncated, at);
    const uint8_t* s = p_ + pos_;
    size_t len = static_cast<size_t>(h.arg);
    // A chunk is a string of its own: a UTF-8 character may not span two chunks.
    if (text && !isValidUtf8(s, len)) return fail(CborErrc::kInvalidUtf8, at);
    pos_ += len;
    if (!v.chunk(s, len)) return fail(CborErrc::kVisitor, at);
  }
  if (!v.endString()) return fail(CborErrc::kVisitor, pos_);
  return CborErrc::kOk;
}

CborErrc CborReader::simple(CborVisitor& v, const Head& h, size_t at) {
  bool ok;
  switch (h.info) {
    case 20:
    case 21:
      ok = v.onBool(h.info == 21);
      break;
    case 22:
    case 23:
      ok = v.onNull();
      break;
    case 25: {
      ok = v.onDouble(halfToDouble(static_cast<uint16_t>(h.arg)));
      break;
    }
    case 26: {
      uint32_t bits = static_cast<uint32_t>(h.arg);
      float f;
      std::memcpy(&f, &bits, 4);
      ok = v.onDouble(f);
      break;
    }
    case 27: {
      double d;
      std::memcpy(&d, &h.arg, 8);
      ok = v.onDouble(d);
      break;
    }
    default:  // 0..19, 24 (one-byte simple values): none is assigned a meaning we map
      return fail(CborErrc::kUnsupportedSimple, at);
  }
  return ok ? CborErrc::kOk : fail(CborErrc::kVisitor, at);
}

CborErrc CborReader::item(CborVisitor& v, int depth) {
  size_t start = pos_;
  Head h;
  if (CborErrc e = readHead(h); e != CborErrc::kOk) return e;
  // Tags: 2 and 3 (bignums) are refused, every other tag number is skipped.
  while (h.major == 6) {
    if (h.indefinite) return fail(CborErrc::kBadIndefinite, start);
    if (h.arg == 2 || h.arg == 3) return fail(CborErrc::kUnsupportedBignum, start);
    start = pos_;
    if (CborErrc e = readHead(h); e != CborErrc::kOk) return e;
  }
  bool ok = true;
  switch (h.major) {
    case 0:
    case 1:
      if (h.indefinite) return fail(CborErrc::kBadIndefinite, start);
      ok = h.major == 0 ? v.onUnsigned(h.arg) : v.onNegative(h.arg);
      break;
    case 2:
    case 3: {
      bool text = h.major == 3;
      if (h.indefinite) return indefiniteString(v, text);
      if (n_ - pos_ < h.arg) return fail(CborErrc::kTruncated, start);
      const uint8_t* s = p_ + pos_;
      size_t len = static_cast<size_t>(h.arg);
      if (text && !isValidUtf8(s, len)) return fail(CborErrc::kInvalidUtf8, start);
      pos_ += len;
      ok = v.onString(text, s, len);
      break;
    }
    case 4:
    case 5: {
      bool map = h.major == 5;
      if (depth >= maxDepth_) return fail(CborErrc::kTooDeep, start);
      // Every element takes at least one byte: a count beyond that cannot be satisfied.
      uint64_t per = map ? 2 : 1;
      if (!h.indefinite && h.arg > (n_ - pos_) / per) return fail(CborErrc::kTruncated, start);
      int64_t count = h.indefinite ? -1 : static_cast<int64_t>(h.arg);
      if (!(map ? v.beginMap(count) : v.beginArray(count))) {
        return fail(CborErrc::kVisitor, start);
      }
      for (uint64_t i = 0;; ++i) {
        if (h.indefinite) {
          if (pos_ >= n_) return fail(CborErrc::kTruncated, pos_);
          if (p_[pos_] == kBreak) {
            ++pos_;
            break;
          }
        } else if (i == h.arg) {
          break;
        }
        size_t at = pos_;
        if (CborErrc e = item(v, depth + 1); e != CborErrc::kOk) return e;
        if (map) {
          if (!v.mapKey()) return fail(CborErrc::kVisitor, at);
          if (h.indefinite && pos_ < n_ && p_[pos_] == kBreak) {
            return fail(CborErrc::kOddIndefiniteMap, pos_);
          }
          at = pos_;
          if (CborErrc e = item(v, depth + 1); e != CborErrc::kOk) return e;
          if (!v.mapValue()) return fail(CborErrc::kVisitor, at);
        } else if (!v.arrayItem(static_cast<size_t>(i))) {
          return fail(CborErrc::kVisitor, at);
        }
      }
      ok = map ? v.endMap() : v.endArray();
      break;
    }
    default:  // 7
      if (h.indefinite) return fail(CborErrc::kUnexpectedBreak, start);
      if (h.info == 24 && h.arg < 32) return fail(CborErrc::kUnsupportedSimple, start);
      return simple(v, h, start);
  }
  return ok ? CborErrc::kOk : fail(CborErrc::kVisitor, start);
}

}  // namespace lapps
