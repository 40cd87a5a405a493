/*
 * bench_suit.c -- what the C core costs per call on this machine (make bench).
 * Prints one JSON object: nanoseconds per call, averaged over many calls.
 * Not a test: nothing here asserts a time.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ems_suit.h"
#include "frames.h"

#define N_FRAMES 200000
#define FRAME_LEN 30 /* SET_LEVELS, 12 channels */

static volatile unsigned sink;

static void on_set_channel(void *ctx, uint8_t ch, uint8_t code, uint16_t us, uint8_t hz)
{
    (void)ctx;
    sink += (unsigned)ch + code + us + hz;
}

static void on_notify(void *ctx, const uint8_t *f, uint16_t len)
{
    (void)ctx;
    sink += f[len - 1];
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void)
{
    static ems_suit_t suit;
    ems_config_t cfg;
    ems_hw_t hw = {on_set_channel, on_notify, NULL, NULL};
    uint8_t *frames = malloc((size_t)N_FRAMES * FRAME_LEN);
    uint8_t arm[16], codes[12];
    double t0, levels_ns, status_ns, tick_ns, crc_ns, verify_ns;
    static ems_auth_t auth;
    uint8_t tag[EMS_TAG_LEN] = {0};
    uint32_t i;

    if (frames == NULL) {
        return 1;
    }
    ems_config_default(&cfg, 12);
    ems_suit_init(&suit, &cfg, &hw, 0);
    (void)frame(arm, EMS_ARM, 1, NULL, 0);
    (void)ems_suit_receive(&suit, arm, 16, 0);
    for (i = 0; i < N_FRAMES; i++) {
        size_t k;
        for (k = 0; k < 12; k++) {
            codes[k] = (uint8_t)((i + k) % 200); /* every frame changes every output */
        }
        (void)frame_levels(frames + (size_t)i * FRAME_LEN, i + 2, 0, codes, 12);
    }
    t0 = now_ns();
    for (i = 0; i < N_FRAMES; i++) {
        /* the clock stays within the watchdog time: every frame is applied */
        (void)ems_suit_receive(&suit, frames + (size_t)i * FRAME_LEN, FRAME_LEN, 1);
    }
    levels_ns = (now_ns() - t0) / N_FRAMES;
    if (ems_suit_state(&suit) != EMS_STATE_ARMED || ems_suit_last_counter(&suit) != N_FRAMES + 1) {
        fprintf(stderr, "bench_suit: the frames were not all applied\n");
        return 1;
    }
    t0 = now_ns();
    for (i = 0; i < N_FRAMES; i++) {
        (void)ems_suit_send_status(&suit, 1);
    }
    status_ns = (now_ns() - t0) / N_FRAMES;
    t0 = now_ns();
    for (i = 0; i < N_FRAMES; i++) {
        (void)ems_suit_tick(&suit, 1);
    }
    tick_ns = (now_ns() - t0) / N_FRAMES;
    t0 = now_ns();
    for (i = 0; i < N_FRAMES; i++) {
        sink += ems_crc16(frames + (size_t)i * FRAME_LEN, FRAME_LEN - 2);
    }
    crc_ns = (now_ns() - t0) / N_FRAMES;
    /* the tag check of an enrolled suit: HMAC-SHA-256 over a 12-channel SET_LEVELS' 20
       signed bytes (a wrong tag, so the full compare runs; the cost is the same either way) */
    ems_auth_init(&auth, NULL, NULL);
    auth.enrolled = true;
    auth.key_id = 1;
    t0 = now_ns();
    for (i = 0; i < N_FRAMES / 4u; i++) {
        sink += ems_auth_verify_tag(&auth, 1, frames + (size_t)i * FRAME_LEN, FRAME_LEN - 10, tag);
    }
    verify_ns = (now_ns() - t0) / (N_FRAMES / 4u);
    printf("{\"set_levels_12ch_ns\": %.0f, \"status_12ch_ns\": %.0f, \"tick_ns\": %.1f, "
           "\"crc16_28_bytes_ns\": %.0f, \"verify_tag_hmac_sha256_ns\": %.0f, \"frames\": %d}\n",
           levels_ns, status_ns, tick_ns, crc_ns, verify_ns, N_FRAMES);
    free(frames);
    return 0;
}
