/*
 * check.h -- a minimal test harness for the firmware's C tests (no library).
 * A failed CHECK prints where and what, and the test binary exits non-zero.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdint.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                              \
    do {                                                                         \
        check_count++;                                                           \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long check_a_ = (long)(a), check_b_ = (long)(b);                         \
        check_count++;                                                           \
        if (check_a_ != check_b_) {                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%ld != %ld)\n",   \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);             \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define RUN(test)                                                                \
    do {                                                                         \
        int before_ = check_failures;                                            \
        test();                                                                  \
        printf("%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test);   \
    } while (0)

static int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}

#endif
