package cache

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks the kernel to back the profile tables with huge
// pages. A lookup reads one random slot of some 100 MB; with 4 KB pages
// nearly every one also misses the TLB and walks the page table. Advice
// only: where transparent huge pages are off, nothing changes.
func adviseHugePages(slots []slot) {
	if len(slots) == 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&slots[0])), len(slots)*int(unsafe.Sizeof(slot{})))
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
}
