/*
 * ems_frame.c -- the suit protocol's frame codec (version 2) and its CRC.
 *
 * Pure functions: bytes in, a struct out (or the reverse). No state, no
 * hardware, no clock. Little-endian on the wire whatever the CPU is.
 */
#include "ems_suit.h"

uint16_t ems_crc16(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned bit;
        crc ^= (uint32_t)data[i] << 8;
        for (bit = 0; bit < 8u; bit++) {
            crc = (crc & 0x8000u) != 0u ? ((crc << 1) ^ 0x1021u) : (crc << 1);
        }
        crc &= 0xFFFFu;
    }
    return (uint16_t)crc;
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

ems_rx_t ems_decode_control(const uint8_t *data, size_t len, ems_control_t *out)
{
    const uint8_t *payload;
    size_t payload_len;
    size_t i;

    if (data == NULL || out == NULL || len < EMS_CONTROL_OVERHEAD ||
        len > EMS_CONTROL_FRAME_MAX) {
        return EMS_RX_BAD_LENGTH;
    }
    if (ems_crc16(data, len - 2u) != get_u16(data + len - 2u)) {
        return EMS_RX_BAD_CRC;
    }
    if ((data[0] >> 4) != EMS_PROTOCOL_VERSION) {
        return EMS_RX_BAD_VERSION;
    }
    out->type = (uint8_t)(data[0] & 0x0Fu);
    out->counter = get_u32(data + 1);
    out->key_id = data[5];
    payload = data + EMS_CONTROL_HEADER_LEN;
    payload_len = len - EMS_CONTROL_OVERHEAD;
    for (i = 0; i < EMS_TAG_LEN; i++) {
        out->tag[i] = data[len - 2u - EMS_TAG_LEN + i];
    }
    if (out->key_id == 0u) {
        uint8_t acc = 0;
        for (i = 0; i < EMS_TAG_LEN; i++) {
            acc |= out->tag[i];
        }
        if (acc != 0u) {
            return EMS_RX_BAD_TAG; /* key id 0 carries 8 zero bytes: nothing else is well formed */
        }
    }
    out->program_id = 0;
    out->n_levels = 0;
    out->frequency_hz = 0;
    out->pulse_width_us = 0;

    switch (out->type) {
    case EMS_SET_LEVELS:
        if (payload_len < 2u) {
            return EMS_RX_BAD_LENGTH;
        }
        out->program_id = payload[0];
        out->n_levels = payload[1];
        if (payload_len != 2u + (size_t)out->n_levels) {
            return EMS_RX_BAD_LENGTH;
        }
        if (out->n_levels == 0u || out->n_levels > EMS_MAX_CHANNELS) {
            return EMS_RX_BAD_PAYLOAD;
        }
        for (i = 0; i < out->n_levels; i++) {
            if (payload[2u + i] > EMS_LEVEL_CODE_MAX) {
                return EMS_RX_BAD_PAYLOAD;
            }
            out->levels[i] = payload[2u + i];
        }
        return EMS_RX_APPLIED;
    case EMS_SET_PROGRAM:
        if (payload_len != 4u) {
            return EMS_RX_BAD_LENGTH;
        }
        out->program_id = payload[0];
        out->frequency_hz = payload[1];
        out->pulse_width_us = get_u16(payload + 2);
        if (out->program_id == 0u || out->frequency_hz < EMS_FREQUENCY_MIN_HZ ||
            out->frequency_hz > EMS_FREQUENCY_MAX_HZ ||
            out->pulse_width_us < EMS_PULSE_WIDTH_MIN_US ||
            out->pulse_width_us > EMS_PULSE_WIDTH_MAX_US) {
            return EMS_RX_BAD_PAYLOAD;
        }
        return EMS_RX_APPLIED;
    case EMS_STOP_ALL:
    case EMS_HEARTBEAT:
    case EMS_ARM:
        return payload_len == 0u ? EMS_RX_APPLIED : EMS_RX_BAD_LENGTH;
    default:
        return EMS_RX_BAD_TYPE;
    }
}

size_t ems_encode_status(const ems_status_t *report, uint8_t first_channel,
                         uint16_t att_payload, uint8_t *out, size_t out_size,
                         uint8_t *n_out)
{
    size_t room = att_payload < out_size ? att_payload : out_size;
    size_t n;
    size_t len;
    size_t i;

    if (n_out != NULL) {
        *n_out = 0;
    }
    if (report == NULL || out == NULL || report->n_channels > EMS_MAX_CHANNELS ||
        first_channel >= report->n_channels || room < EMS_ATT_PAYLOAD_ONE_CHANNEL) {
        return 0;
    }
    n = (room - EMS_STATUS_OVERHEAD) / 2u;
    if (n > (size_t)(report->n_channels - first_channel)) {
        n = (size_t)(report->n_channels - first_channel);
    }
    out[0] = EMS_STATUS_TYPE_BYTE;
    put_u32(out + 1, report->counter);
    put_u32(out + 5, report->clock_ms);
    out[9] = report->state;
    out[10] = report->battery_pct;
    out[11] = report->faults;
    out[12] = report->program_id;
    out[13] = report->frequency_hz;
    put_u16(out + 14, report->pulse_width_us);
    out[16] = first_channel;
    out[17] = (uint8_t)n;
    for (i = 0; i < n; i++) {
        out[18u + 2u * i] = report->levels[first_channel + i];
        out[19u + 2u * i] = report->impedance[first_channel + i];
    }
    len = 18u + 2u * n;
    put_u16(out + len, ems_crc16(out, len));
    if (n_out != NULL) {
        *n_out = (uint8_t)n;
    }
    return len + 2u;
}
