//! Guest memory (one anonymous mapping), the identity-mapped page tables and the ELF loader.

use crate::abi::{self, Mailbox};

/// Page-table entry bits.
const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
/// User/supervisor: the guest runs in user mode, so every level must allow it.
const USER: u64 = 1 << 2;
/// A 2 MiB page (in a page-directory entry).
const HUGE: u64 = 1 << 7;
const PAGE_2M: u64 = 2 << 20;

/// The guest's physical memory: an anonymous shared mapping of [`abi::MEMORY_SIZE`] bytes.
///
/// Before the vCPUs run the VMM writes it through [`write`](GuestMemory::write); afterwards both
/// sides touch only the mailbox, and only through its atomics.
pub(crate) struct GuestMemory {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; concurrent access (the guest's vCPUs
// and the VMM's threads) goes through the mailbox's atomics only.
unsafe impl Send for GuestMemory {}
// SAFETY: as for Send; `&GuestMemory` only gives out the mailbox (atomics) and the base address.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Maps `len` bytes of zeroed memory.
    pub(crate) fn new(len: usize) -> std::io::Result<GuestMemory> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choice; the result
        // is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(GuestMemory {
            ptr: ptr.cast(),
            len,
        })
    }

    pub(crate) fn host_addr(&self) -> u64 {
        self.ptr as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` to guest-physical `addr`; `false` if they do not fit.
    pub(crate) fn write(&mut self, addr: u64, bytes: &[u8]) -> bool {
        let Some(end) = addr.checked_add(bytes.len() as u64) else {
            return false;
        };
        if end > self.len as u64 {
            return false;
        }
        // SAFETY: `addr..end` is inside the mapping (checked), and `&mut self` excludes any
        // other access.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(addr as usize), bytes.len())
        };
        true
    }

    /// The mailbox.
    pub(crate) fn mailbox(&self) -> &Mailbox {
        const _: () = assert!(abi::MAILBOX as usize % std::mem::align_of::<Mailbox>() == 0);
        assert!(abi::MAILBOX as usize + std::mem::size_of::<Mailbox>() <= self.len);
        // SAFETY: inside the mapping (asserted), aligned (the mapping is page aligned, MAILBOX a
        // multiple of the mailbox's alignment), and every field is an atomic, valid for any bits.
        unsafe { &*(self.ptr.add(abi::MAILBOX as usize) as *const Mailbox) }
    }

    /// Writes the page tables: `[0, len)` identity-mapped with 2 MiB pages, writable, user.
    pub(crate) fn write_page_tables(&mut self) {
        let pml4 = abi::PDPT | PRESENT | WRITABLE | USER;
        let pdpt = abi::PD | PRESENT | WRITABLE | USER;
        assert!(self.write(abi::PML4, &pml4.to_le_bytes()));
        assert!(self.write(abi::PDPT, &pdpt.to_le_bytes()));
        let pages = (self.len as u64).div_ceil(PAGE_2M);
        assert!(pages <= 512, "one page directory maps 1 GiB");
        for i in 0..pages {
            let pde = (i * PAGE_2M) | PRESENT | WRITABLE | USER | HUGE;
            assert!(self.write(abi::PD + i * 8, &pde.to_le_bytes()));
        }
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; nothing uses it after drop.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Why an ELF image cannot be loaded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ElfError(pub(crate) String);

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| ElfError(format!("truncated at byte {off}")))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| ElfError(format!("truncated at byte {off}")))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| ElfError(format!("truncated at byte {off}")))
}

/// One `PT_LOAD` segment: copy `file` bytes to `addr`, zero up to `addr + mem_size`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Segment<'a> {
    pub(crate) addr: u64,
    pub(crate) file: &'a [u8],
    pub(crate) mem_size: u64,
}

/// Parses a static x86-64 ELF executable whose segments lie in `[min, max)`: its entry point
/// and its loadable segments.
pub(crate) fn parse_elf(
    image: &[u8],
    min: u64,
    max: u64,
) -> Result<(u64, Vec<Segment<'_>>), ElfError> {
    if image.get(..4) != Some(b"\x7fELF") {
        return Err(ElfError("not an ELF file".into()));
    }
    if image.get(4) != Some(&2) || image.get(5) != Some(&1) {
        return Err(ElfError("not a 64-bit little-endian ELF".into()));
    }
    if u16_at(image, 16)? != 2 {
        return Err(ElfError("not an executable (ET_EXEC)".into()));
    }
    if u16_at(image, 18)? != 62 {
        return Err(ElfError("not x86-64".into()));
    }
    let entry = u64_at(image, 24)?;
    let phoff = u64_at(image, 32)? as usize;
    let phentsize = u16_at(image, 54)? as usize;
    let phnum = u16_at(image, 56)? as usize;
    if phentsize < 56 {
        return Err(ElfError(format!("program header size {phentsize}")));
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(image, ph)? != 1 {
            continue; // not PT_LOAD
        }
        let offset = u64_at(image, ph + 8)? as usize;
        let addr = u64_at(image, ph + 16)?;
        let file_size = u64_at(image, ph + 32)? as usize;
        let mem_size = u64_at(image, ph + 40)?;
        let file = offset
            .checked_add(file_size)
            .and_then(|end| image.get(offset..end))
            .ok_or_else(|| ElfError(format!("segment {i} lies outside the file")))?;
        let end = addr.checked_add(mem_size);
        if file_size as u64 > mem_size || addr < min || end.is_none_or(|e| e > max) {
            return Err(ElfError(format!(
                "segment {i} at {addr:#x} (+{mem_size:#x}) is outside [{min:#x}, {max:#x})"
            )));
        }
        segments.push(Segment {
            addr,
            file,
            mem_size,
        });
    }
    if !segments
        .iter()
        .any(|s| (s.addr..s.addr + s.file.len() as u64).contains(&entry))
    {
        return Err(ElfError(format!(
            "entry point {entry:#x} is not in a loaded segment"
        )));
    }
    Ok((entry, segments))
}

/// Loads `image` into `mem` (segments in `[IMAGE_BASE, STACKS_BASE)`); returns the entry point.
pub(crate) fn load_elf(mem: &mut GuestMemory, image: &[u8]) -> Result<u64, ElfError> {
    let (entry, segments) = parse_elf(image, abi::IMAGE_BASE, abi::STACKS_BASE)?;
    for s in segments {
        // The mapping is fresh (zeroed), so the bss part needs no clearing.
        if !mem.write(s.addr, s.file) {
            return Err(ElfError(format!("segment at {:#x} does not fit", s.addr)));
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header plus program headers, as the linker would write them.
    fn elf(entry: u64, segs: &[(u64, &[u8], u64)]) -> Vec<u8> {
        let phoff = 64u64;
        let data_off = phoff + 56 * segs.len() as u64;
        let mut b = vec![0u8; data_off as usize];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&phoff.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        let mut off = data_off;
        for (i, (addr, data, mem)) in segs.iter().enumerate() {
            let ph = (phoff + 56 * i as u64) as usize;
            b[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
            b[ph + 8..ph + 16].copy_from_slice(&off.to_le_bytes());
            b[ph + 16..ph + 24].copy_from_slice(&addr.to_le_bytes());
            b[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            b[ph + 40..ph + 48].copy_from_slice(&mem.to_le_bytes());
            off += data.len() as u64;
        }
        for (_, data, _) in segs {
            b.extend_from_slice(data);
        }
        b
    }

    #[test]
    fn parses_segments_and_entry() {
        let image = elf(
            0x10_0000,
            &[(0x10_0000, b"\x90\x90", 2), (0x10_1000, b"ab", 0x100)],
        );
        let (entry, segs) = parse_elf(&image, 0x10_0000, 0x40_0000).unwrap();
        assert_eq!(entry, 0x10_0000);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].addr, 0x10_1000);
        assert_eq!(segs[1].file, b"ab");
        assert_eq!(segs[1].mem_size, 0x100);
    }

    #[test]
    fn rejects_bad_images() {
        assert!(parse_elf(b"hello", 0, u64::MAX).is_err());
        let below = elf(0x1000, &[(0x1000, b"\x90", 1)]);
        let e = parse_elf(&below, 0x10_0000, 0x40_0000).unwrap_err();
        assert!(e.0.contains("outside"), "{e:?}");
        let no_entry = elf(0x20_0000, &[(0x10_0000, b"\x90", 1)]);
        assert!(parse_elf(&no_entry, 0x10_0000, 0x40_0000)
            .unwrap_err()
            .0
            .contains("entry"));
        let mut truncated = elf(0x10_0000, &[(0x10_0000, b"\x90\x90\x90\x90", 4)]);
        truncated.truncate(truncated.len() - 2);
        assert!(parse_elf(&truncated, 0x10_0000, 0x40_0000).is_err());
        let mut not_exec = elf(0x10_0000, &[(0x10_0000, b"\x90", 1)]);
        not_exec[16] = 3; // ET_DYN
        assert!(parse_elf(&not_exec, 0x10_0000, 0x40_0000)
            .unwrap_err()
            .0
            .contains("ET_EXEC"));
    }

    #[test]
    fn the_embedded_guest_loads_within_its_region() {
        let (entry, segs) = parse_elf(crate::GUEST, abi::IMAGE_BASE, abi::STACKS_BASE).unwrap();
        assert!(entry >= abi::IMAGE_BASE);
        assert!(!segs.is_empty());
    }

    #[test]
    fn page_tables_map_memory_for_user_mode() {
        let mut mem = GuestMemory::new(abi::MEMORY_SIZE as usize).unwrap();
        mem.write_page_tables();
        // SAFETY: reading back what write_page_tables wrote, inside the mapping.
        let read = |addr: u64| unsafe {
            (mem.host_addr() as *const u64)
                .add(addr as usize / 8)
                .read()
        };
        assert_eq!(read(abi::PML4), abi::PDPT | 7);
        assert_eq!(read(abi::PDPT), abi::PD | 7);
        let pages = abi::MEMORY_SIZE / PAGE_2M;
        for i in 0..pages {
            assert_eq!(read(abi::PD + 8 * i), (i * PAGE_2M) | 0x87);
        }
        assert_eq!(
            read(abi::PD + 8 * pages),
            0,
            "nothing mapped past the memory"
        );
    }

    #[test]
    fn write_refuses_out_of_range() {
        let mut mem = GuestMemory::new(1 << 16).unwrap();
        assert!(mem.write(0, &[1, 2, 3]));
        assert!(!mem.write((1 << 16) - 1, &[1, 2]));
        assert!(!mem.write(u64::MAX, &[1]));
    }
}
