"""Pure-Python MD4 (RFC 1320): OpenSSL 3 no longer offers it to hashlib, and NTLM's NT hash needs it."""
import struct


def _f(x, y, z):
    return (x & y) | (~x & z)


def _g(x, y, z):
    return (x & y) | (x & z) | (y & z)


def _h(x, y, z):
    return x ^ y ^ z


def _rotl(v, s):
    v &= 0xFFFFFFFF
    return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF


def md4(data: bytes) -> bytes:
    msg = bytearray(data)
    bitlen = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bitlen)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            k, s = i, (3, 7, 11, 19)[i % 4]
            if i % 4 == 0:
                a = _rotl(a + _f(b, c, d) + x[k], s)
            elif i % 4 == 1:
                d = _rotl(d + _f(a, b, c) + x[k], s)
            elif i % 4 == 2:
                c = _rotl(c + _f(d, a, b) + x[k], s)
            else:
                b = _rotl(b + _f(c, d, a) + x[k], s)
        for i in range(16):
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            t = 0x5A827999
            if i % 4 == 0:
                a = _rotl(a + _g(b, c, d) + x[k] + t, s)
            elif i % 4 == 1:
                d = _rotl(d + _g(a, b, c) + x[k] + t, s)
            elif i % 4 == 2:
                c = _rotl(c + _g(d, a, b) + x[k] + t, s)
            else:
                b = _rotl(b + _g(c, d, a) + x[k] + t, s)
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):
            k, s = order[i], (3, 9, 11, 15)[i % 4]
            t = 0x6ED9EBA1
            if i % 4 == 0:
                a = _rotl(a + _h(b, c, d) + x[k] + t, s)
            elif i % 4 == 1:
                d = _rotl(d + _h(a, b, c) + x[k] + t, s)
            elif i % 4 == 2:
                c = _rotl(c + _h(d, a, b) + x[k] + t, s)
            else:
                b = _rotl(b + _h(c, d, a) + x[k] + t, s)
        a = (a + aa) & 0xFFFFFFFF
        b = (b + bb) & 0xFFFFFFFF
        c = (c + cc) & 0xFFFFFFFF
        d = (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


if __name__ == "__main__":
    # RFC 1320 test vectors.
    assert md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"
    assert md4(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890").hex() \
        == "e33b4ddc9c38f2199c3e7b164fcc0536"
    # NT hash of "password".
    assert md4("password".encode("utf-16-le")).hex() == "8846f7eaee8fb117ad06bdd830b7586c"
    print("md4 ok")
