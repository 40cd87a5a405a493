/*
 * test_codec.c -- the frame codec and CRC against docs/protocol.md: every
 * control frame type, every way a frame can be malformed, status encoding and
 * splitting to an ATT payload.
 */
#include "ems_suit.h"
#include "check.h"
#include "frames.h"

static void test_crc_check_value(void)
{
    const uint8_t digits[] = "123456789";
    /* v1 golden vector "1304006b1a": CRC of 13 04 00 is 0x1A6B */
    const uint8_t v1_stop[] = {0x13, 0x04, 0x00};
    CHECK_EQ(ems_crc16(digits, 9), 0x29B1);
    CHECK_EQ(ems_crc16(v1_stop, 3), 0x1A6B);
    CHECK_EQ(ems_crc16(digits, 0), 0xFFFF);
    CHECK_EQ(spec_crc(digits, 9), 0x29B1);
}

static void test_decode_set_levels(void)
{
    /* by hand: 0x21, counter 0x12345678, key 0, program 7, n 3, codes, tag, CRC */
    uint8_t f[32] = {0x21, 0x78, 0x56, 0x34, 0x12, 0x00, 0x07, 0x03, 0x00, 0x14, 0xF0};
    ems_control_t c;
    uint16_t crc;
    memset(f + 11, 0, 8);
    crc = spec_crc(f, 19);
    f[19] = (uint8_t)(crc & 0xFF);
    f[20] = (uint8_t)(crc >> 8);
    CHECK_EQ(ems_decode_control(f, 21, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.type, EMS_SET_LEVELS);
    CHECK_EQ(c.counter, 0x12345678L);
    CHECK_EQ(c.key_id, 0);
    CHECK_EQ(c.program_id, 7);
    CHECK_EQ(c.n_levels, 3);
    CHECK_EQ(c.levels[0], 0);
    CHECK_EQ(c.levels[1], 20);
    CHECK_EQ(c.levels[2], 240);
}

static void test_decode_twelve_and_thirty_two_channels(void)
{
    uint8_t codes[32], f[64];
    ems_control_t c;
    size_t len;
    memset(codes, 20, sizeof codes);
    len = frame_levels(f, 1, 0, codes, 12);
    CHECK_EQ(len, 30); /* the spec: 30 bytes for 12 channels */
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.n_levels, 12);
    len = frame_levels(f, 1, 0, codes, 32);
    CHECK_EQ(len, 50);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.n_levels, 32);
}

static void test_decode_set_program_and_bare_frames(void)
{
    uint8_t f[32];
    ems_control_t c;
    size_t len = frame_program(f, 0xFFFFFFFFu, 255, 150, 450);
    CHECK_EQ(len, 20);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.type, EMS_SET_PROGRAM);
    CHECK(c.counter == 0xFFFFFFFFu);
    CHECK_EQ(c.program_id, 255);
    CHECK_EQ(c.frequency_hz, 150);
    CHECK_EQ(c.pulse_width_us, 450);
    len = frame_program(f, 2, 1, 1, 50);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.pulse_width_us, 50);
    CHECK_EQ(c.frequency_hz, 1);
    {
        const uint8_t types[] = {EMS_STOP_ALL, EMS_HEARTBEAT, EMS_ARM};
        size_t i;
        for (i = 0; i < sizeof types; i++) {
            len = frame(f, types[i], 9, NULL, 0);
            CHECK_EQ(len, 16);
            CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
            CHECK_EQ(c.type, types[i]);
            CHECK_EQ(c.counter, 9);
        }
    }
}

static void test_decode_keeps_key_id_and_tag(void)
{
    const uint8_t tag[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t f[32];
    ems_control_t c;
    size_t len = frame_raw(f, 2, EMS_HEARTBEAT, 5, 3, NULL, 0, tag);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    CHECK_EQ(c.key_id, 3);
    CHECK(memcmp(c.tag, tag, 8) == 0);
}

static void test_key_id_zero_with_a_tag_is_corrupt(void)
{
    const uint8_t tag[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t f[32];
    ems_control_t c;
    size_t len = frame_raw(f, 2, EMS_HEARTBEAT, 5, 0, NULL, 0, tag);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_TAG);
}

static void test_bad_crc(void)
{
    uint8_t f[32];
    ems_control_t c;
    size_t len = frame(f, EMS_ARM, 1, NULL, 0);
    size_t i;
    for (i = 0; i < len; i++) {
        f[i] ^= 0x01; /* any single bit flipped anywhere */
        CHECK(ems_decode_control(f, len, &c) != EMS_RX_APPLIED);
        f[i] ^= 0x01;
    }
    f[len - 1] ^= 0xFF;
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_CRC);
}

static void test_bad_version(void)
{
    uint8_t f[32];
    ems_control_t c;
    unsigned v;
    for (v = 0; v < 16; v++) {
        size_t len = frame_raw(f, (uint8_t)v, EMS_ARM, 1, 0, NULL, 0, NULL);
        CHECK_EQ(ems_decode_control(f, len, &c), v == 2 ? EMS_RX_APPLIED : EMS_RX_BAD_VERSION);
    }
    {
        /* a version 1 frame as version 1 sent it (v1 golden vector "arm") */
        const uint8_t v1_arm[] = {0x15, 0x06, 0x00, 0xA9, 0xCE};
        CHECK_EQ(ems_decode_control(v1_arm, sizeof v1_arm, &c), EMS_RX_BAD_LENGTH);
    }
}

static void test_bad_type(void)
{
    uint8_t f[32];
    ems_control_t c;
    unsigned t;
    for (t = 0; t < 16; t++) {
        size_t len = frame(f, (uint8_t)t, 1, NULL, 0);
        ems_rx_t r = ems_decode_control(f, len, &c);
        if (t >= 3 && t <= 5) {
            CHECK_EQ(r, EMS_RX_APPLIED);
        } else if (t == 1 || t == 2) {
            CHECK_EQ(r, EMS_RX_BAD_LENGTH); /* a real type without its payload */
        } else {
            CHECK_EQ(r, EMS_RX_BAD_TYPE); /* 0, 6..15, status (8) included */
        }
    }
}

static void test_bad_length(void)
{
    uint8_t f[80], codes[40];
    ems_control_t c;
    size_t len;
    const uint8_t extra = 0;
    memset(codes, 1, sizeof codes);
    len = frame(f, EMS_ARM, 1, NULL, 0);
    CHECK_EQ(ems_decode_control(f, len - 1, &c), EMS_RX_BAD_LENGTH);
    CHECK_EQ(ems_decode_control(f, 0, &c), EMS_RX_BAD_LENGTH);
    CHECK_EQ(ems_decode_control(NULL, 16, &c), EMS_RX_BAD_LENGTH);
    /* a STOP_ALL with a payload byte */
    len = frame(f, EMS_STOP_ALL, 1, &extra, 1);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
    /* SET_LEVELS whose n says 3 but carries 2 codes */
    {
        uint8_t p[] = {0, 3, 10, 10};
        len = frame(f, EMS_SET_LEVELS, 1, p, sizeof p);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
        p[1] = 1; /* n says 1, carries 2 */
        len = frame(f, EMS_SET_LEVELS, 1, p, sizeof p);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
    }
    /* SET_LEVELS with only a program id */
    {
        const uint8_t p[] = {0};
        len = frame(f, EMS_SET_LEVELS, 1, p, 1);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
    }
    /* n = 0 */
    {
        const uint8_t p[] = {0, 0};
        len = frame(f, EMS_SET_LEVELS, 1, p, 2);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_PAYLOAD);
    }
    /* 33 channels: longer than any control frame */
    len = frame_levels(f, 1, 0, codes, 33);
    CHECK_EQ(len, 51);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
    /* SET_PROGRAM one byte short / long */
    {
        const uint8_t p[] = {1, 85, 0x5E, 0x01, 0};
        len = frame(f, EMS_SET_PROGRAM, 1, p, 3);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
        len = frame(f, EMS_SET_PROGRAM, 1, p, 5);
        CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_LENGTH);
    }
}

static void test_out_of_range_fields(void)
{
    uint8_t f[64];
    ems_control_t c;
    uint8_t codes[12];
    size_t len;
    memset(codes, 240, sizeof codes);
    len = frame_levels(f, 1, 0, codes, 12);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_APPLIED);
    codes[11] = 241;
    len = frame_levels(f, 1, 0, codes, 12);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_PAYLOAD);
    codes[11] = 255;
    len = frame_levels(f, 1, 0, codes, 12);
    CHECK_EQ(ems_decode_control(f, len, &c), EMS_RX_BAD_PAYLOAD);

    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 0, 85, 350), &c), EMS_RX_BAD_PAYLOAD);
    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 1, 0, 350), &c), EMS_RX_BAD_PAYLOAD);
    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 1, 151, 350), &c), EMS_RX_BAD_PAYLOAD);
    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 1, 85, 49), &c), EMS_RX_BAD_PAYLOAD);
    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 1, 85, 451), &c), EMS_RX_BAD_PAYLOAD);
    CHECK_EQ(ems_decode_control(f, frame_program(f, 1, 1, 85, 0xFFFF), &c), EMS_RX_BAD_PAYLOAD);
}

static ems_status_t sample_report(uint8_t n)
{
    ems_status_t r;
    uint8_t ch;
    memset(&r, 0, sizeof r);
    r.counter = 0x01020304u;
    r.clock_ms = 0xA0B0C0D0u;
    r.state = EMS_STATE_ARMED;
    r.battery_pct = 87;
    r.faults = EMS_FAULT_ELECTRODE_OPEN | EMS_FAULT_CHARGE_CLAMPED;
    r.program_id = 7;
    r.frequency_hz = 85;
    r.pulse_width_us = 350;
    r.n_channels = n;
    for (ch = 0; ch < n; ch++) {
        r.levels[ch] = (uint8_t)(ch * 7);
        r.impedance[ch] = (uint8_t)(40 + ch);
    }
    return r;
}

static void test_status_layout(void)
{
    ems_status_t r = sample_report(5);
    uint8_t out[EMS_STATUS_FRAME_MAX];
    uint8_t n = 99;
    const uint8_t head[18] = {0x28, 0x04, 0x03, 0x02, 0x01, 0xD0, 0xC0, 0xB0, 0xA0,
                              1,    87,   0x44, 7,    85,   0x5E, 0x01, 0,    5};
    size_t len = ems_encode_status(&r, 0, 64, out, sizeof out, &n);
    CHECK_EQ(len, 30);
    CHECK_EQ(n, 5);
    CHECK(memcmp(out, head, 18) == 0);
    CHECK_EQ(out[18], 0);
    CHECK_EQ(out[19], 40);
    CHECK_EQ(out[26], 28);
    CHECK_EQ(out[27], 44);
    CHECK_EQ(out[28] | (out[29] << 8), spec_crc(out, 28));
}

static void test_status_splits_to_the_att_payload(void)
{
    ems_status_t r = sample_report(32);
    uint8_t out[EMS_STATUS_FRAME_MAX];
    uint8_t n = 0;
    size_t len;
    /* 64 bytes: 22 channels, then 10 */
    len = ems_encode_status(&r, 0, 64, out, sizeof out, &n);
    CHECK_EQ(len, 64);
    CHECK_EQ(n, 22);
    CHECK_EQ(out[16], 0);
    CHECK_EQ(out[17], 22);
    len = ems_encode_status(&r, 22, 64, out, sizeof out, &n);
    CHECK_EQ(len, 40);
    CHECK_EQ(n, 10);
    CHECK_EQ(out[16], 22);
    CHECK_EQ(out[18], 22 * 7);
    CHECK_EQ(out[19], 40 + 22);
    CHECK_EQ(out[len - 2] | (out[len - 1] << 8), spec_crc(out, len - 2));
    /* a large payload: one frame of all 32 */
    len = ems_encode_status(&r, 0, 244, out, sizeof out, &n);
    CHECK_EQ(len, 84);
    CHECK_EQ(n, 32);
    /* an odd payload: 65 fits 22 channels too */
    len = ems_encode_status(&r, 0, 65, out, sizeof out, &n);
    CHECK_EQ(n, 22);
    /* the smallest: one channel a frame */
    len = ems_encode_status(&r, 31, 22, out, sizeof out, &n);
    CHECK_EQ(len, 22);
    CHECK_EQ(n, 1);
    /* too small, past the end, no room */
    CHECK_EQ(ems_encode_status(&r, 0, 21, out, sizeof out, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(ems_encode_status(&r, 32, 64, out, sizeof out, &n), 0);
    CHECK_EQ(ems_encode_status(&r, 0, 64, out, 21, &n), 0);
    /* the buffer limits the frame as the payload does */
    len = ems_encode_status(&r, 0, 244, out, 30, &n);
    CHECK_EQ(len, 30);
    CHECK_EQ(n, 5);
}

int main(void)
{
    RUN(test_crc_check_value);
    RUN(test_decode_set_levels);
    RUN(test_decode_twelve_and_thirty_two_channels);
    RUN(test_decode_set_program_and_bare_frames);
    RUN(test_decode_keeps_key_id_and_tag);
    RUN(test_key_id_zero_with_a_tag_is_corrupt);
    RUN(test_bad_crc);
    RUN(test_bad_version);
    RUN(test_bad_type);
    RUN(test_bad_length);
    RUN(test_out_of_range_fields);
    RUN(test_status_layout);
    RUN(test_status_splits_to_the_att_payload);
    return check_summary("test_codec");
}
