// Minimal zip support for the page: read and write STORED (uncompressed) entries only.
// The server writes its batch zips stored (PNGs are compressed already), so no inflate is
// needed, and the page builds its "download all" zip the same way.  No library, no CDN.
"use strict";

const LivematteZip = (() => {
  const CRC_TABLE = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  // {name: Uint8Array} from an ArrayBuffer, walking the local file headers.
  function read(buffer) {
    const view = new DataView(buffer);
    const entries = {};
    let p = 0;
    while (p + 30 <= buffer.byteLength && view.getUint32(p, true) === 0x04034b50) {
      const flags = view.getUint16(p + 6, true);
      const method = view.getUint16(p + 8, true);
      const size = view.getUint32(p + 18, true);
      const nameLen = view.getUint16(p + 26, true);
      const extraLen = view.getUint16(p + 28, true);
      if (method !== 0 || flags & 0x08) throw new Error("unsupported zip entry (compressed)");
      const name = new TextDecoder().decode(new Uint8Array(buffer, p + 30, nameLen));
      const start = p + 30 + nameLen + extraLen;
      entries[name] = new Uint8Array(buffer.slice(start, start + size));
      p = start + size;
    }
    return entries;
  }

  // A Blob holding a stored zip of [{name, bytes: Uint8Array}].
  function write(files) {
    const enc = new TextEncoder();
    const parts = [];
    const central = [];
    let offset = 0;
    const now = new Date();
    const dosTime = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
    const dosDate = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
    for (const { name, bytes } of files) {
      const nameBytes = enc.encode(name);
      const crc = crc32(bytes);
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);
      local.setUint16(4, 20, true); // version needed
      local.setUint16(6, 0x0800, true); // UTF-8 names
      local.setUint16(10, dosTime, true);
      local.setUint16(12, dosDate, true);
      local.setUint32(14, crc, true);
      local.setUint32(18, bytes.length, true);
      local.setUint32(22, bytes.length, true);
      local.setUint16(26, nameBytes.length, true);
      parts.push(local, nameBytes, bytes);
      const dir = new DataView(new ArrayBuffer(46));
      dir.setUint32(0, 0x02014b50, true);
      dir.setUint16(4, 20, true);
      dir.setUint16(6, 20, true);
      dir.setUint16(8, 0x0800, true);
      dir.setUint16(12, dosTime, true);
      dir.setUint16(14, dosDate, true);
      dir.setUint32(16, crc, true);
      dir.setUint32(20, bytes.length, true);
      dir.setUint32(24, bytes.length, true);
      dir.setUint16(28, nameBytes.length, true);
      dir.setUint32(42, offset, true);
      central.push(dir, nameBytes);
      offset += 30 + nameBytes.length + bytes.length;
    }
    const dirSize = central.reduce((n, part) => n + part.byteLength, 0);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, files.length, true);
    end.setUint16(10, files.length, true);
    end.setUint32(12, dirSize, true);
    end.setUint32(16, offset, true);
    return new Blob([...parts, ...central, end], { type: "application/zip" });
  }

  return { read, write, crc32 };
})();
