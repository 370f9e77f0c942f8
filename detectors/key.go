package detectors

// Keys are packed into a uint64 so the per-key tables hold no strings.
//
// A number of up to 17 digits, optionally behind a '+', packs exactly:
//
//	bit 63     0 (numeric)
//	bit 62     1 if the number had a leading '+'
//	bits 57-61 the number of digits (so "+0012" and "+12" differ)
//	bits 0-56  the digits' value (< 10^17 < 2^57)
//
// Anything else (trunk names, IP addresses, hashed numbers) packs as a
// 64-bit FNV-1a hash with bit 63 set. Two different such identifiers share a
// key with probability about n²/2⁶⁴ — for five million identifiers, one in
// a million — which the engine accepts.
const (
	keyOpaque  = uint64(1) << 63
	keyPlus    = uint64(1) << 62
	keyLenBits = 57
	keyValMask = uint64(1)<<keyLenBits - 1
	maxDigits  = 17
)

// packKey returns the packed key of s and whether it is numeric.
func packKey(s string) (k uint64, numeric bool) {
	i := 0
	if len(s) > 0 && s[0] == '+' {
		i = 1
		k = keyPlus
	}
	n := len(s) - i
	if n == 0 || n > maxDigits {
		return hashKey(s), false
	}
	var v uint64
	for ; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return hashKey(s), false
		}
		v = v*10 + uint64(c)
	}
	return k | uint64(n)<<keyLenBits | v, true
}

// hashKey is FNV-1a 64 of s with the opaque bit set.
func hashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h | keyOpaque
}

// unpackKey writes the number a numeric key stands for. ok is false for
// opaque keys, whose text is not recoverable.
func unpackKey(dst []byte, k uint64) ([]byte, bool) {
	if k&keyOpaque != 0 {
		return dst, false
	}
	if k&keyPlus != 0 {
		dst = append(dst, '+')
	}
	n := int(k>>keyLenBits) & 31
	v := k & keyValMask
	var buf [maxDigits]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:n]...), true
}

// seqNeighbour returns the key of the number d above (d<0: below) a
// numeric key, keeping its length; ok is false outside the range and for
// opaque keys.
func seqNeighbour(k uint64, d int) (uint64, bool) {
	if k&keyOpaque != 0 {
		return 0, false
	}
	v := int64(k & keyValMask)
	w := v + int64(d)
	if w < 0 || w > int64(keyValMask) {
		return 0, false
	}
	return k&^keyValMask | uint64(w), true
}

// mix64 scrambles a key (the splitmix64 finaliser) for slot indexes.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
