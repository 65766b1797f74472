package embedpages

import (
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"
)

//go:embed testdata
var testFS embed.FS

const testFile = "testdata/pages.txt"

// residentPages counts the pages of data's whole pages that are mapped into this process
// (/proc/self/pagemap's "present" bit, which needs no privilege).
func residentPages(t *testing.T, data string) (resident, total int) {
	t.Helper()
	page := uintptr(os.Getpagesize())
	first := uintptr(unsafe.Pointer(unsafe.StringData(data)))
	start := (first + page - 1) &^ (page - 1)
	end := (first + uintptr(len(data))) &^ (page - 1)
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8*int((end-start)/page))
	if _, err := f.ReadAt(buf, int64(start/page*8)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(buf); i += 8 {
		if binary.LittleEndian.Uint64(buf[i:])&(1<<63) != 0 {
			resident++
		}
	}
	return resident, len(buf) / 8
}

func TestRelease(t *testing.T) {
	data, err := fileData(testFS, testFile)
	if err != nil {
		t.Fatalf("fileData: %v", err)
	}
	read, err := testFS.ReadFile(testFile)
	if err != nil {
		t.Fatal(err)
	}
	if data != string(read) {
		t.Fatalf("fileData returned %d bytes that differ from ReadFile's %d", len(data), len(read))
	}
	if r, n := residentPages(t, data); r != n || n < 60 {
		t.Fatalf("after a read, %d of the file's %d whole pages are resident; want all, and at least 60", r, n)
	}

	released, err := Release(testFS, testFile)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	r, n := residentPages(t, data)
	if r != 0 {
		t.Errorf("after Release, %d of the file's %d whole pages are still resident", r, n)
	}
	if released != n*os.Getpagesize() {
		t.Errorf("Release says it released %d bytes, want the %d whole pages, %d bytes", released, n, n*os.Getpagesize())
	}

	again, err := testFS.ReadFile(testFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, read) {
		t.Fatal("the file reads differently after its pages were released")
	}
}

func TestReleaseRefuses(t *testing.T) {
	if _, err := Release(testFS, "testdata/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Release of a missing file: %v, want os.ErrNotExist", err)
	}
	var empty embed.FS
	if _, err := Release(empty, testFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Release on an empty embed.FS: %v, want os.ErrNotExist", err)
	}

	// Heap memory is anonymous: releasing it would zero it, so it must be refused.
	heap := bytes.Repeat([]byte("x"), 4*os.Getpagesize())
	start := uintptr(unsafe.Pointer(&heap[0]))
	err := checkReadOnlyFileMapping(start, start+uintptr(len(heap)))
	if err == nil || !strings.Contains(err.Error(), "not") {
		t.Errorf("checkReadOnlyFileMapping of heap memory: %v, want a refusal", err)
	}
	if heap[0] != 'x' {
		t.Fatal("heap memory changed")
	}
}
