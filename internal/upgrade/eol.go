package upgrade

import "bytes"

// isCRLF reports whether every line of data that ends ends in CRLF, and at
// least one does: a file checked out on Windows with core.autocrlf=true.
// Such a file is compared and merged as LF text and written back with CRLF.
func isCRLF(data []byte) bool {
	n := bytes.Count(data, []byte("\n"))
	return n > 0 && bytes.Count(data, []byte("\r\n")) == n
}

// toLF returns data with CRLF line endings replaced by LF.
func toLF(data []byte) []byte {
	return bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
}

// toCRLF returns data with every line ending CRLF.
func toCRLF(data []byte) []byte {
	return bytes.ReplaceAll(toLF(data), []byte("\n"), []byte("\r\n"))
}
