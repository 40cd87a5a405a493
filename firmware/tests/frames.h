/*
 * frames.h -- control frames built byte by byte from docs/protocol.md, for the
 * tests (the firmware itself never encodes control frames).
 */
#ifndef FRAMES_H
#define FRAMES_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Bit by bit, written again from the spec (not the firmware's ems_crc16). */
static inline uint16_t spec_crc(const uint8_t *d, size_t n)
{
    uint16_t crc = 0xFFFF;
    size_t i;
    for (i = 0; i < n; i++) {
        int b;
        for (b = 7; b >= 0; b--) {
            int in = (d[i] >> b) & 1;
            int top = (crc >> 15) & 1;
            crc = (uint16_t)(crc << 1);
            if (in ^ top) {
                crc ^= 0x1021;
            }
        }
    }
    return crc;
}

/* version|type, counter, key id, payload, tag (NULL: zeros), CRC. Returns the length. */
static inline size_t frame_raw(uint8_t *out, uint8_t version, uint8_t type, uint32_t counter,
                        uint8_t key_id, const uint8_t *payload, size_t n,
                        const uint8_t *tag)
{
    size_t len = 0;
    uint16_t crc;
    out[len++] = (uint8_t)((version << 4) | type);
    out[len++] = (uint8_t)(counter & 0xFF);
    out[len++] = (uint8_t)((counter >> 8) & 0xFF);
    out[len++] = (uint8_t)((counter >> 16) & 0xFF);
    out[len++] = (uint8_t)(counter >> 24);
    out[len++] = key_id;
    if (n) {
        memcpy(out + len, payload, n);
        len += n;
    }
    if (tag) {
        memcpy(out + len, tag, 8);
    } else {
        memset(out + len, 0, 8);
    }
    len += 8;
    crc = spec_crc(out, len);
    out[len++] = (uint8_t)(crc & 0xFF);
    out[len++] = (uint8_t)(crc >> 8);
    return len;
}

static inline size_t frame(uint8_t *out, uint8_t type, uint32_t counter, const uint8_t *payload,
                    size_t n)
{
    return frame_raw(out, 2, type, counter, 0, payload, n, NULL);
}

static inline size_t frame_levels(uint8_t *out, uint32_t counter, uint8_t program,
                           const uint8_t *codes, uint8_t n)
{
    uint8_t p[2 + 40];
    p[0] = program;
    p[1] = n;
    memcpy(p + 2, codes, n);
    return frame(out, 0x1, counter, p, (size_t)n + 2);
}

static inline size_t frame_program(uint8_t *out, uint32_t counter, uint8_t program, uint8_t hz,
                            uint16_t us)
{
    uint8_t p[4];
    p[0] = program;
    p[1] = hz;
    p[2] = (uint8_t)(us & 0xFF);
    p[3] = (uint8_t)(us >> 8);
    return frame(out, 0x2, counter, p, 4);
}

#endif
