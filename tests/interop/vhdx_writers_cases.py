# SPDX-License-Identifier: MIT
"""Builds the images of test_vhdx_writers.sh into a directory: VHDX files
laid out the way Hyper-V (New-VHD, checkpoints), Windows, Disk2VHD and
qemu lay them out, crafted with vhdxcraft.build from the MS-VHDX
specification and what each writer is publicly known to write (sources in
test_vhdx_writers.sh), independently of libvhd. Writes NAME.flat (the
content each image encodes, sparse) and a manifest, one line per image:

    NAME CHAIN QEMU PYVHDI LEAF RANGES (tab-separated)

CHAIN: the image files leaf to base, comma-separated; QEMU: "yes" when
qemu-img reads it (base images, 512-byte sectors, no unknown required
item), "log" when only after its own replay (`qemu-img check -r all`);
PYVHDI: "yes" when libvhdi 20210425 reads the chain as the spec says;
LEAF: "yes" when the image is written in the test; RANGES: "-" to
compare whole images, else off:len,... to compare (the 4 GiB images).
Usage: vhdx_writers_cases.py DIR
"""
import os
import random
import struct
import sys
import uuid

import vhdxcraft as vx

K = 1024
M = K * K
G = K * M

# Windows-only metadata items (openvmm's known items and its marker of a
# half-made file) and stand-ins for items and regions no reader knows.
G_CHS = uuid.UUID('DA02D7BC-3D3A-423C-AC88-2A36AB21479B').bytes_le
G_INCOMPLETE = uuid.UUID('71CC85F0-1B69-4E28-9558-C3BF83AE75D3').bytes_le
G_USER = uuid.UUID('6B4F2C4E-0C55-4A3B-9A0E-5E1B7D8C9F01').bytes_le
G_REGION = uuid.UUID('F2C1B0A9-8E7D-4C6B-A5F4-E3D2C1B0A998').bytes_le
G_FAR = uuid.UUID('3E1D5C7B-9A2F-4E60-8B14-C7D6E5F40312').bytes_le
REQ_REGION = uuid.UUID('0A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9').bytes_le

# Hyper-V (openvmm order): log at 1 MiB, metadata at 2, BAT at 3.
HYPERV = ('log', 'meta', 'bat')
# qemu-img 7.2: BAT at 2 MiB, metadata after it.
QEMU = ('log', 'bat', 'meta')


def rnd(seed, n):
    return random.Random(seed).randbytes(n)


def chs_item():
    """CHS parameters: heads per cylinder, sectors per track."""
    return struct.pack('<II', 16, 63)


def guid_name(base):
    """A checkpoint's name as Hyper-V makes it: <disk>_<GUID>.avhdx."""
    return '%s_%s.avhdx' % (base, str(uuid.uuid4()).upper())


class Cases:
    def __init__(self):
        self.ops = {}     # image -> [(offset, bytes or None=zeros of n)]
        self.size = {}
        self.lines = []

    def note(self, name, chain, qemu, pyvhdi, leaf, ranges=None):
        size = self.size[name]
        with open(name + '.flat', 'wb') as f:
            f.truncate(size)
            for off, data, n in self.ops[name]:
                if off >= size:
                    continue
                f.seek(off)
                f.write((data if data is not None else bytes(n))
                        [:size - off])
        r = '-' if ranges is None else ','.join(
            '%d:%d' % (o, min(n, size - o)) for o, n in sorted(ranges)
            if o < size)
        self.lines.append('\t'.join((name, ','.join(chain), qemu, pyvhdi,
                                     leaf, r)))

    def image(self, name, size, bs, writes=(), parent=None, zero=(),
              **kw):
        """Build NAME; its model is the parent's plus writes, with the
        blocks in @zero (states 1-3) reading zeros."""
        vx.build(name, size, bs, writes=writes, parent=parent, **kw)
        self.size[name] = size
        ops = list(self.ops[parent]) if parent else []
        for b in zero:
            ops.append((b * bs, None, bs))
        ops += [(o, d, len(d)) for o, d in writes]
        self.ops[name] = ops


def main(d):
    os.chdir(d)
    c = Cases()
    ext = []  # images whose extra items and regions must survive writes

    # --- Hyper-V New-VHD dynamic: 32 MiB blocks, 512/4096 sectors, the
    # CHS item, an optional user item and an optional region (after the
    # BAT), blocks allocated in write order; 72 MiB: the last block is
    # partial (chunk ratio 128, one chunk).
    extra = [(G_CHS, 2, chs_item()),
             (G_USER, 1, b'user metadata kept by every writer' * 3)]
    lay = HYPERV + (('region', G_REGION, 1, 0, 0x5a),)
    w = [(0, rnd(1, 64 * K)), (33 * M + 512, rnd(2, 3 * M)),
         (72 * M - 8 * K, rnd(3, 8 * K))]
    c.image('hv-dyn.vhdx', 72 * M, 32 * M, w, lss=512, pss=4096,
            layout=lay, extra_items=extra, order=[2, 1, 0],
            creator='Microsoft Windows 10.0.19045.0')
    c.note('hv-dyn.vhdx', ['hv-dyn.vhdx'], 'yes', 'yes', 'yes')
    ext.append('hv-dyn.vhdx')

    # The same with the CHS item marked required (openvmm knows it).
    c.image('hv-chsreq.vhdx', 40 * M, 32 * M, [(M, rnd(4, M))], lss=512,
            pss=4096, layout=HYPERV, extra_items=[(G_CHS, 6,
                                                   chs_item())])
    c.note('hv-chsreq.vhdx', ['hv-chsreq.vhdx'], 'no', 'yes', 'yes')
    ext.append('hv-chsreq.vhdx')

    # The incomplete marker as openvmm writes it (offset 0, length 0)
    # but not required: opens. libvhdi 20210425 refuses any item at
    # offset 0 ("item offset value out of bounds"), although the spec
    # has an empty item's offset zero. An optional region right past the
    # end of the file (the spec bounds regions by alignment only; qemu
    # and openvmm accept it): new blocks must go after it.
    c.image('hv-incopt.vhdx', 40 * M, 32 * M, [(M, rnd(46, 64 * K))],
            pss=4096, layout=HYPERV + (('far', G_FAR, 36, 2),),
            extra_items=[(G_INCOMPLETE, 0, b'')])
    c.note('hv-incopt.vhdx', ['hv-incopt.vhdx'], 'yes', 'no', 'yes')
    ext.append('hv-incopt.vhdx')

    # A half-made file (incomplete marker, required, empty): refused.
    os.makedirs('bad', exist_ok=True)
    vx.build('bad/hv-incomplete.vhdx', 40 * M, 32 * M, pss=4096,
             layout=HYPERV, extra_items=[(G_INCOMPLETE, 4, b'')])
    # An unknown required region: refused. (Both kept out of the
    # mounted directory.)
    vx.build('bad/req-region.vhdx', 40 * M, 32 * M, layout=HYPERV +
             (('region', REQ_REGION, 1, 1, 0),))

    # --- Hyper-V checkpoints: base, <base>_<GUID>.avhdx (2 MiB blocks,
    # all five keys, parent_linkage2 zeros), then a second checkpoint
    # over it (absolute path without \\?\, a real parent_linkage2 GUID,
    # other key order).
    base = 'hv-base.vhdx'
    c.image(base, 64 * M, 32 * M, [(0, rnd(5, 4 * M)),
                                   (40 * M, rnd(6, 6 * M))],
            pss=4096, layout=HYPERV)
    c.note(base, [base], 'yes', 'yes', 'no')
    g1 = guid_name('hv-base')
    win = '\\\\?\\D:\\Hyper-V\\Virtual Hard Disks\\'
    vol = '\\\\?\\Volume{5e4c2a1b-93f0-4d7e-8c21-0a9b8c7d6e5f}\\' \
        'Hyper-V\\Virtual Hard Disks\\'
    c.image(g1, 64 * M, 2 * M, [(4 * K, rnd(7, 8 * K)),
                                (2 * M, rnd(8, 2 * M)),
                                (41 * M + 64 * K, rnd(9, 128 * K)),
                                (63 * M, rnd(10, M))], parent=base,
            layout=HYPERV, locator=[
                ('relative_path', '.\\' + base),
                ('volume_path', vol + base),
                ('absolute_win32_path', win + base),
                ('parent_linkage', '{@LINK@}'),
                ('parent_linkage2', '{00000000-0000-0000-0000-'
                 '000000000000}')])
    c.note(g1, [g1, base], 'no', 'yes', 'no')
    g2 = guid_name('hv-base')
    c.image(g2, 64 * M, 2 * M, [(8 * K, rnd(11, 4 * K)),
                                (10 * M, rnd(12, 5 * M)),
                                (63 * M + 512 * K, rnd(13, 4 * K))],
            parent=g1, layout=HYPERV, locator=[
                ('absolute_win32_path', 'D:\\Hyper-V\\Virtual Hard Disks\\'
                 + g1),
                ('parent_linkage2', '{%s}' % uuid.uuid4()),
                ('volume_path', vol + g1),
                ('parent_linkage', '{@LINK@}'),
                ('relative_path', '.\\' + g1)])
    c.note(g2, [g2, g1, base], 'no', 'yes', 'yes')

    # A checkpoint whose relative path is stale (the VM was moved) and
    # whose volume path names another file: found by the file name of
    # absolute_win32_path beside it.
    mv = guid_name('moved')
    c.image(mv, 64 * M, 2 * M, [(20 * M, rnd(14, 2 * M + 4 * K))],
            parent=base, layout=HYPERV, locator=[
                ('parent_linkage', '{@LINK@}'),
                ('relative_path', '..\\Old VMs\\base.vhdx'),
                ('volume_path', vol + 'renamed.vhdx'),
                ('absolute_win32_path', 'C:\\VMs\\' + base)])
    c.note(mv, [mv, base], 'no', 'yes', 'yes')

    # Windows compares names without case: the locator says
    # .\HV-BASE.VHDX for hv-base.vhdx; parent_linkage in upper case
    # (libvhdi 20210425 takes that for another GUID: "mismatch in
    # identifier", so the model is the oracle).
    cs = guid_name('case')
    c.image(cs, 64 * M, 2 * M, [(30 * M, rnd(40, 64 * K))], parent=base,
            layout=HYPERV, locator=[
                ('parent_linkage', '{@LINKUPPER@}'),
                ('relative_path', '.\\HV-BASE.VHDX'),
                ('volume_path', vol + 'HV-BASE.VHDX'),
                ('absolute_win32_path', 'C:\\VMs\\Hv-Base.VHDX')])
    c.note(cs, [cs, base], 'no', 'no', 'yes')

    # A checkpoint caught in a merge: parent_linkage is stale, the
    # parent carries parent_linkage2 (the v1.00 merge alternate).
    mg = guid_name('merging')
    c.image(mg, 64 * M, 2 * M, [(44 * M, rnd(48, 2 * M))], parent=base,
            layout=HYPERV, locator=[
                ('parent_linkage', '{%s}' % uuid.uuid4()),
                ('parent_linkage2', '{@LINK@}'),
                ('relative_path', '.\\' + base)])
    c.note(mg, [mg, base], 'no', 'no', 'yes')  # libvhdi: linkage only

    # A checkpoint larger than its parent (New-VHD -ParentPath
    # -SizeBytes): past the parent's end it reads zeros.
    gr = guid_name('grown')
    c.image(gr, 80 * M, 2 * M, [(62 * M, rnd(41, 4 * M)),
                                (78 * M, rnd(42, M))],
            parent=base, layout=HYPERV)
    c.note(gr, [gr, base], 'no', 'no', 'yes')  # libvhdi: read error

    # --- 4096-byte logical sectors: a base with 1 MiB blocks (chunk
    # ratio 32768) whose size is no block multiple, a child with 2 MiB
    # blocks and 4 KiB-granular sector bitmaps; logical 4096 over
    # physical 512 (libvhdi issue 17's image).
    k4 = 'k4-base.vhdx'
    c.image(k4, 40 * M + 12 * K, M, [(0, rnd(15, 3 * M)),
                                     (40 * M, rnd(16, 12 * K))],
            lss=4096, pss=4096, layout=HYPERV)
    c.note(k4, [k4], 'no', 'yes', 'no')
    k4c = guid_name('k4-base')
    c.image(k4c, 40 * M + 12 * K, 2 * M,
            [(4 * K, rnd(17, 4 * K)), (6 * M, rnd(18, 2 * M)),
             (9 * M - 4 * K, rnd(19, 12 * K)), (40 * M + 8 * K,
                                                rnd(20, 4 * K))],
            parent=k4, layout=HYPERV)
    c.note(k4c, [k4c, k4], 'no', 'yes', 'yes')
    c.image('k4p512.vhdx', 70 * M, 32 * M, [(32 * M - 4 * K,
                                             rnd(21, 8 * K))],
            lss=4096, pss=512, layout=HYPERV)
    c.note('k4p512.vhdx', ['k4p512.vhdx'], 'no', 'yes', 'yes')

    # --- 256 MiB blocks (chunk ratio 16), the last one partial.
    c.image('b256.vhdx', 300 * M, 256 * M, [(M, rnd(22, M)),
                                           (299 * M, rnd(23, M))],
            layout=HYPERV, pss=4096)
    r256 = [(0, 4 * M), (148 * M, 4 * M), (254 * M, 4 * M),
            (296 * M, 4 * M)]
    c.note('b256.vhdx', ['b256.vhdx'], 'yes', 'yes', 'no', r256)
    # a child with 256 MiB blocks (chunk ratio 16): sector bitmap bits
    # at 524288 per block
    b2 = guid_name('b256')
    c.image(b2, 300 * M, 256 * M, [(4 * K, rnd(43, 8 * K)),
                                   (255 * M, rnd(44, 2 * M)),
                                   (299 * M + 512 * K, rnd(45, 4 * K))],
            parent='b256.vhdx', layout=HYPERV)
    c.note(b2, [b2, 'b256.vhdx'], 'no', 'yes', 'yes', r256)

    # --- Over 4 GiB: 1 MiB blocks, blocks on both sides of the first
    # chunk boundary (block 4096 is BAT entry 4097), payload past 4 GiB
    # in a sparse file; a 2 MiB-block child with partial blocks in chunks
    # 0 and 1 (sector bitmap entries 2048 and 4097).
    big = 'big.vhdx'
    bsize = 4 * G + 8 * M
    w = [(0, rnd(24, M)), (4095 * M, rnd(25, M)), (4096 * M, rnd(26, M)),
         (bsize - M, rnd(27, M))]
    c.image(big, bsize, M, w, layout=HYPERV, data_at=5 * G,
            order=[4096, 0, 4103, 4095])
    near = [(0, 4 * M), (4094 * M, 4 * M), (bsize - 4 * M, 4 * M),
            (bsize // 2 - 2 * M, 4 * M)]
    c.note(big, [big], 'yes', 'yes', 'no', near)
    bigc = guid_name('big')
    c.image(bigc, bsize, 2 * M, [(4 * K, rnd(28, 4 * K)),
                                 (4096 * M - 8 * K, rnd(29, 16 * K)),
                                 (4098 * M, rnd(30, 2 * M)),
                                 (bsize - 4 * K, rnd(31, 4 * K))],
            parent=big, layout=HYPERV, data_at=6 * G)
    c.note(bigc, [bigc, big], 'no', 'yes', 'yes', near)

    # --- Disk2VHD: both headers identical (same sequence number), log,
    # BAT, metadata, then every block back to back in disk order, as a
    # fixed disk is laid out, but dynamic (zero blocks stay holes).
    c.image('d2v.vhdx', 48 * M, 2 * M, [(0, rnd(32, 6 * M)),
                                        (20 * M, rnd(33, 2 * M)),
                                        (46 * M, rnd(34, 2 * M))],
            layout=QEMU, seqs=(5, 5), identical=True,
            creator='Disk2VHD', allocate_all=True)
    c.note('d2v.vhdx', ['d2v.vhdx'], 'yes', 'yes', 'yes')

    # --- Block states of other writers: UNDEFINED and UNMAPPED keeping
    # an offset (of garbage), ZERO, UNMAPPED without one, the v0.95
    # draft's UNMAPPED (5, Windows 8 previews), in a base and in a child
    # over data (never the parent's).
    c.image('states.vhdx', 24 * M, 2 * M, [(0, rnd(35, 2 * M)),
                                           (10 * M, rnd(36, M))],
            states={1: (1, True), 2: 2, 3: (3, True), 4: 3, 6: (5, True)},
            zero=(1, 2, 3, 4, 6), layout=HYPERV)
    c.note('states.vhdx', ['states.vhdx'], 'yes', 'yes', 'yes')
    stc = guid_name('states')
    c.image(stc, 64 * M, 2 * M, [(6 * M, rnd(37, 4 * K))], parent=base,
            states={0: (1, True), 1: 2, 2: (3, True), 20: 3},
            zero=(0, 1, 2, 20), layout=HYPERV)
    c.note(stc, [stc, base], 'no', 'no', 'yes')

    # --- Fixed: Windows (every block state 6, LeaveBlockAllocated) and
    # qemu 7.2's "fixed": ZERO entries without offsets over 32 MiB
    # preallocated after the metadata, a block written by qemu-io
    # appended after that (as `qemu-img create -o subformat=fixed` and
    # qemu-io leave it).
    c.image('win-fixed.vhdx', 64 * M, 32 * M, [(5 * M, rnd(38, M))],
            fixed=True, layout=HYPERV, pss=4096)
    c.note('win-fixed.vhdx', ['win-fixed.vhdx'], 'yes', 'yes', 'yes')
    # a size no block multiple: the file ends with the virtual disk,
    # inside the last block
    c.image('win-fixed-odd.vhdx', 72 * M, 32 * M, [(71 * M, rnd(47, M))],
            fixed=True, layout=HYPERV, pss=4096, trim=True)
    c.note('win-fixed-odd.vhdx', ['win-fixed-odd.vhdx'], 'yes', 'yes', 'yes')
    c.image('q-fixed.vhdx', 32 * M, 8 * M, [(0, rnd(39, 8 * M))],
            fixed=True, states={1: 2, 2: 2, 3: 2},
            layout=QEMU + (('gap', 32),), creator='QEMU v7.2.22')
    c.note('q-fixed.vhdx', ['q-fixed.vhdx'], 'yes', 'yes', 'yes')

    # --- A log left by a crashed Hyper-V (see crash()), and by one that
    # crashed writing a checkpoint (see crash_child()).
    crash(c, 'hv-crash.vhdx', 1)
    c.note('hv-crash.vhdx', ['hv-crash.vhdx'], 'log', 'no', 'yes')
    # qemu 7.2 replays no entry of over 126 descriptors: its reads of
    # several descriptor sectors land on one buffer (vhdx-log.c).
    crash(c, 'hv-crash-256.vhdx', 256)
    c.note('hv-crash-256.vhdx', ['hv-crash-256.vhdx'], 'no', 'no', 'yes')
    cc = crash_child(c, base)
    c.note(cc, [cc, base], 'no', 'no', 'yes')

    with open('manifest', 'w') as f:
        f.write('\n'.join(c.lines) + '\n')
    with open('extras', 'w') as f:
        f.write('\n'.join(ext) + '\n')


def crash(c, name, nzero):
    """NAME: a 64 MiB disk resized to 96 MiB, with new blocks, where
    the host died after logging and before writing in place.

    Ring (1 MiB): entry S at 1 MiB - 8 KiB wrapping to 4 KiB (metadata
    sector, an intermediate BAT sector); then from 4 KiB: S+1 with
    @nzero zero descriptors (256: three descriptor sectors) over the
    payload of block 20 (garbage in the file, mapped by the final BAT);
    S+2 without descriptors; S+3 (head): the final BAT sector and the
    metadata sector again; every Tail is S's offset. Stale entries stay
    around it: S-10 right after the head and an older two-entry sequence
    (S-3, S-2) at 128 KiB, both valid with the same LogGuid and each
    mapping garbage, and at 256 KiB an entry S+100 of an earlier session
    (another LogGuid); none may be applied.
    """
    bs, size, old = M, 96 * M, 64 * M
    w = [(b * M, rnd(100 + b, M)) for b in (0, 1, 2, 5, 40, 90)]
    w.append((20 * M, bytes([0xee]) * M))
    c.image(name, size, bs, w, layout=HYPERV, pss=4096)
    c.ops[name].append((20 * M, None, M))  # zeroed by the log
    with open(name, 'r+b') as f:
        bat_off, _ = vx.regions(f)[vx.G_BAT]
        meta_off, _ = vx.regions(f)[vx.G_META]
        end = f.seek(0, os.SEEK_END)
        final = bytearray(vx.pread(f, 4096, bat_off))
        msec = bytearray(vx.pread(f, 4096, meta_off + 64 * K))
        ent = list(struct.unpack('<512Q', final))
        blk20 = ent[20] & ~0xFFFFF
        mid = list(ent)
        mid[90] = 0
        before = list(mid)
        before[40] = before[20] = 0
        # the in-place metadata still says 64 MiB
        t = vx.pread(f, 65536, meta_off)
        n = struct.unpack_from('<H', t, 10)[0]
        for i in range(n):
            e = t[32 + 32 * i:64 + 32 * i]
            if bytes(e[:16]) == vx.G_SIZE:
                so = struct.unpack_from('<I', e, 16)[0] - 64 * K
        oldm = bytearray(msec)
        struct.pack_into('<Q', oldm, so, old)
        f.seek(meta_off + 64 * K)
        f.write(oldm)
        f.seek(bat_off)
        f.write(struct.pack('<512Q', *before))
        # garbage the stale entries would map
        junk = (end + M - 1) // M * M
        f.seek(junk)
        f.write(bytes([0x66]) * M)
        end = junk + M
        f.truncate(end)
        bad = list(before)
        bad[3] = bad[4] = junk | 6
        badm = bytearray(oldm)
        struct.pack_into('<Q', badm, so, 32 * M)

        lg = uuid.uuid4().bytes_le
        h = vx.set_log_guid(f, lg)
        L = struct.unpack_from('<I', h, 68)[0]
        S = 0x2000000fe
        midb = struct.pack('<512Q', *mid)
        finb = bytes(final)
        badb = struct.pack('<512Q', *bad)
        tail = L - 8 * K
        E = vx.log_entry
        # the sequence: S wraps around the end, S+1.. follow from 4 KiB
        seq = [(tail, E(S, tail, lg, [('desc', meta_off + 64 * K, msec),
                                      ('desc', bat_off, midb)], end, end)),
               (None, E(S + 1, tail, lg,
                        [('zero', blk20 + k, M // nzero)
                         for k in range(0, M, M // nzero)], end, end)),
               (None, E(S + 2, tail, lg, [], end, end)),
               (None, E(S + 3, tail, lg,
                        [('desc', bat_off, finb),
                         ('desc', meta_off + 64 * K, msec)], end, end))]
        pos = 4 * K
        for i, (p, e) in enumerate(seq):
            if p is None:
                seq[i] = (pos, e)
                pos += len(e)
        stale = [
            # right after the head: an older entry of this session
            (pos, E(S - 10, pos, lg, [('desc', bat_off, badb)], end, end)),
            # an older two-entry sequence
            (128 * K, E(S - 3, 128 * K, lg, [('desc', bat_off, badb)],
                        end, end)),
            (136 * K, E(S - 2, 128 * K, lg,
                        [('desc', meta_off + 64 * K, badm)], end, end)),
            # an earlier session's entry: higher number, other GUID
            (256 * K, E(S + 100, 256 * K, uuid.uuid4().bytes_le,
                        [('desc', bat_off, badb)], end, end))]
        for pos, e in stale + seq:
            vx.ring_put(f, h, pos, e)


def crash_child(c, base):
    """A checkpoint whose host died after logging its new blocks: the
    payload is in the file, the BAT sectors (payload entries in sector 0,
    the sector bitmap entry 2048 in sector 4) and the new sector bitmap
    block are only in one log entry (a zero descriptor over the bitmap
    block, then its non-zero sectors), and the bitmap block lies past the end
    of the file: FlushedFileOffset is the file size, LastFileOffset the
    size with the bitmap block, so the replay grows the file."""
    name = guid_name('crashed')
    w = [(2 * M + 4 * K, rnd(50, 8 * K)), (12 * M, rnd(51, 2 * M)),
         (31 * M, rnd(52, 64 * K))]
    c.image(name, 64 * M, 2 * M, w, parent=base, layout=HYPERV)
    with open(name, 'r+b') as f:
        bat_off, _ = vx.regions(f)[vx.G_BAT]
        end = f.seek(0, os.SEEK_END)
        sb = struct.unpack('<Q', vx.pread(f, 8, bat_off + 2048 * 8))[0]
        sb &= ~0xFFFFF
        assert sb == end - M
        s0 = vx.pread(f, 4096, bat_off)
        s4 = vx.pread(f, 4096, bat_off + 4 * 4096)
        sbd = [('desc', sb + k, vx.pread(f, 4096, sb + k))
               for k in range(0, M, 4096)]
        sbd = [d for d in sbd if d[2].count(0) != 4096]
        for off in (bat_off, bat_off + 4 * 4096):
            f.seek(off)
            f.write(bytes(4096))
        f.truncate(sb)
        lg = uuid.uuid4().bytes_le
        h = vx.set_log_guid(f, lg)
        vx.ring_put(f, h, 0, vx.log_entry(
            7, 0, lg, [('zero', sb, M)] + sbd +
            [('desc', bat_off, s0), ('desc', bat_off + 4 * 4096, s4)],
            sb, end))
    return name


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
