//go:build ignore

// Command bcryptprimitives writes a stand-in bcryptprimitives.dll for Wine
// prefixes that lack one (Wine 8 does): Go 1.22 and later load it at start
// for ProcessPrng and die without it.
//
// The DLL holds no code. Its only export, ProcessPrng, is a forwarder to
// advapi32.SystemFunction036 (RtlGenRandom), which Wine implements and
// which has the same calling shape: (buffer, length) -> TRUE. The file is a
// 1 KiB PE32+ image: headers, then one read-only section holding the export
// directory.
//
// Usage:
//
//	go run scripts/wine/bcryptprimitives.go OUTPUT.dll
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

const (
	fileAlign    = 0x200
	sectionAlign = 0x1000
	sectionRVA   = sectionAlign // the one section follows the headers
	imageBase    = 0x180000000  // the usual base of 64-bit DLLs
	peOffset     = 0x40         // e_lfanew: PE header right after the DOS header
	numDataDirs  = 16
	exportDirLen = 40 // IMAGE_EXPORT_DIRECTORY

	dllName   = "bcryptprimitives.dll"
	funcName  = "ProcessPrng"
	forwardTo = "advapi32.SystemFunction036"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run bcryptprimitives.go OUTPUT.dll")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], image(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// image returns the whole DLL file.
func image() []byte {
	edata := exportSection()
	var f bytes.Buffer
	w := func(v any) { binary.Write(&f, binary.LittleEndian, v) } // bytes.Buffer writes never fail

	// IMAGE_DOS_HEADER: "MZ", zeros, e_lfanew at 0x3c.
	dos := make([]byte, peOffset)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], peOffset)
	f.Write(dos)

	// "PE\0\0" and IMAGE_FILE_HEADER.
	f.WriteString("PE\x00\x00")
	w(uint16(0x8664))                   // Machine: AMD64
	w(uint16(1))                        // NumberOfSections
	w(uint32(0))                        // TimeDateStamp
	w(uint32(0))                        // PointerToSymbolTable
	w(uint32(0))                        // NumberOfSymbols
	w(uint16(112 + 8*numDataDirs))      // SizeOfOptionalHeader (PE32+)
	w(uint16(0x0002 | 0x0020 | 0x2000)) // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DLL

	// IMAGE_OPTIONAL_HEADER64.
	w(uint16(0x20b))                             // Magic: PE32+
	w(uint8(14))                                 // MajorLinkerVersion
	w(uint8(0))                                  // MinorLinkerVersion
	w(uint32(0))                                 // SizeOfCode
	w(uint32(fileAlign))                         // SizeOfInitializedData
	w(uint32(0))                                 // SizeOfUninitializedData
	w(uint32(0))                                 // AddressOfEntryPoint: none, no DllMain
	w(uint32(0))                                 // BaseOfCode
	w(uint64(imageBase))                         // ImageBase
	w(uint32(sectionAlign))                      // SectionAlignment
	w(uint32(fileAlign))                         // FileAlignment
	w(uint16(6))                                 // MajorOperatingSystemVersion
	w(uint16(0))                                 // MinorOperatingSystemVersion
	w(uint16(0))                                 // MajorImageVersion
	w(uint16(0))                                 // MinorImageVersion
	w(uint16(6))                                 // MajorSubsystemVersion
	w(uint16(0))                                 // MinorSubsystemVersion
	w(uint32(0))                                 // Win32VersionValue
	w(uint32(2 * sectionAlign))                  // SizeOfImage: headers + one section
	w(uint32(fileAlign))                         // SizeOfHeaders
	w(uint32(0))                                 // CheckSum
	w(uint16(3))                                 // Subsystem: WINDOWS_CUI
	w(uint16(0x0020 | 0x0040 | 0x0100))          // HIGH_ENTROPY_VA | DYNAMIC_BASE | NX_COMPAT
	w(uint64(0x100000))                          // SizeOfStackReserve
	w(uint64(0x1000))                            // SizeOfStackCommit
	w(uint64(0x100000))                          // SizeOfHeapReserve
	w(uint64(0x1000))                            // SizeOfHeapCommit
	w(uint32(0))                                 // LoaderFlags
	w(uint32(numDataDirs))                       // NumberOfRvaAndSizes
	w([2]uint32{sectionRVA, uint32(len(edata))}) // [0] export table
	for range numDataDirs - 1 {
		w([2]uint32{})
	}

	// IMAGE_SECTION_HEADER for .edata.
	w([8]byte{'.', 'e', 'd', 'a', 't', 'a'})
	w(uint32(len(edata)))              // VirtualSize
	w(uint32(sectionRVA))              // VirtualAddress
	w(uint32(fileAlign))               // SizeOfRawData
	w(uint32(fileAlign))               // PointerToRawData
	w([2]uint32{})                     // PointerToRelocations, PointerToLinenumbers: none
	w([2]uint16{})                     // NumberOfRelocations, NumberOfLinenumbers
	w(uint32(0x00000040 | 0x40000000)) // CNT_INITIALIZED_DATA | MEM_READ

	f.Write(make([]byte, fileAlign-f.Len())) // pad the headers
	f.Write(edata)
	f.Write(make([]byte, 2*fileAlign-f.Len())) // pad the section
	return f.Bytes()
}

// exportSection returns the export directory and what it points to, laid
// out for RVA sectionRVA. The function's address points back into the
// export directory's own range, which is what makes it a forwarder.
func exportSection() []byte {
	const (
		eat      = sectionRVA + exportDirLen // address table: 1 entry
		names    = eat + 4                   // name pointer table: 1 entry
		ordinals = names + 4                 // ordinal table: 1 uint16
		strs     = ordinals + 2
	)
	dllRVA := uint32(strs)
	funcRVA := dllRVA + uint32(len(dllName)+1)
	fwdRVA := funcRVA + uint32(len(funcName)+1)

	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	w(uint32(0))        // Characteristics
	w(uint32(0))        // TimeDateStamp
	w(uint32(0))        // MajorVersion, MinorVersion
	w(dllRVA)           // Name
	w(uint32(1))        // Base: first ordinal
	w(uint32(1))        // NumberOfFunctions
	w(uint32(1))        // NumberOfNames
	w(uint32(eat))      // AddressOfFunctions
	w(uint32(names))    // AddressOfNames
	w(uint32(ordinals)) // AddressOfNameOrdinals
	w(fwdRVA)           // export address table[0]: the forwarder string
	w(funcRVA)          // name pointer table[0]
	w(uint16(0))        // ordinal table[0]: index into the address table
	for _, s := range []string{dllName, funcName, forwardTo} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.Bytes()
}
