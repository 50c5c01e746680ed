package wire

// HTTP/1.1 framing helpers shared by the HTTP client (internal/workload)
// and latlab serve's HTTP endpoint (internal/server): byte-slice scans that
// neither allocate nor convert to strings, for the timed parse paths.

// IndexCRLF returns the index of the first CRLF in b, or -1.
func IndexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// IndexCRLFCRLF returns the index of the first empty line (CRLFCRLF) in b,
// the end of a message head, or -1.
func IndexCRLFCRLF(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i
		}
	}
	return -1
}

// TrimOWS trims optional whitespace (spaces and tabs) from both ends of b.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// IsToken reports whether b is a non-empty RFC 9110 token (a header field
// name, a method): no whitespace, controls or separators. A field name with
// whitespace before its colon, or an obs-fold continuation line, is not one.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c < 0x80 && c > ' ' && c < 0x7f && !isSeparator(c):
		default:
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool {
	switch c {
	case '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}':
		return true
	}
	return false
}

// ValidFieldValue reports whether b holds only what RFC 9110 §5.5 allows
// in a field value: visible ASCII, space, tab and obs-text (0x80–0xFF); no
// NUL, CR, LF or other control bytes.
func ValidFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// ASCIIEqualFold reports whether b equals s, a lower-case ASCII string,
// ignoring ASCII case in b.
func ASCIIEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// ASCIIHasSuffixFold reports whether b ends with s (lower-case ASCII),
// ignoring ASCII case in b.
func ASCIIHasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && ASCIIEqualFold(b[len(b)-len(s):], s)
}

// ASCIIContainsFold reports whether b contains s (lower-case ASCII),
// ignoring ASCII case in b.
func ASCIIContainsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if ASCIIEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

// ParseDec parses a non-negative decimal of at most 18 digits (a
// Content-Length).
func ParseDec(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		v = v*10 + int64(d-'0')
	}
	return v, true
}

// ParseHexSize parses a chunk-size line (extensions after ';' ignored).
func ParseHexSize(b []byte) (int64, bool) {
	for i, ch := range b {
		if ch == ';' {
			b = b[:i]
			break
		}
	}
	b = TrimOWS(b)
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, d := range b {
		switch {
		case '0' <= d && d <= '9':
			v = v<<4 | int64(d-'0')
		case 'a' <= lower(d) && lower(d) <= 'f':
			v = v<<4 | int64(lower(d)-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
