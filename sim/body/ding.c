/* The Ding et al. (2003) muscle model over n muscles: the arithmetic of
 * sim/body/ding.py (DingMuscles.step, .pulse, .settle_fatigue) in C, loaded
 * with ctypes by sim/body/kernel.py.
 *
 * Same operations in the same order as the numpy code, IEEE double, no fast
 * math and no contraction into fused multiply-adds (-ffp-contract=off), so the
 * only difference is the last bit of exp(); tests/test_body_speed.py checks it
 * against the code it replaced. The scalars that depend on the step only (the
 * exponentials of S and CN) are computed by the caller, once per step.
 */

#include <math.h>
#include <stddef.h>

typedef struct {
    size_t n;
    double *s, *cn, *force, *a, *km, *tau1, *last_pulse, *f_sum, *r0_minus_1;
} ding_state;

/* Advance every muscle by h seconds with no pulse inside the step.
 * c_half = 0.5 h / tau_c, e_half = exp(-c_half), c_full = h / tau_c,
 * e = exp(-c_full); fatigue: fold the mean force over the step into f_sum. */
void ding_step(const ding_state *m, double h, double c_half, double e_half, double c_full,
               double e, double tau2, int fatigue)
{
    for (size_t i = 0; i < m->n; i++) {
        double s = m->s[i];
        if (s == 0.0 && m->cn[i] == 0.0 && m->force[i] == 0.0) {
            continue; /* exactly at rest (never pulsed, or decayed to 0): it stays so */
        }
        double x = (s * c_half + m->cn[i]) * e_half; /* CN at the step's midpoint */
        x = x / (m->km[i] + x);
        double tau = x * tau2 + m->tau1[i];
        double f_ss = m->a[i] * x * tau;
        double f_old = m->force[i];
        double f_new = (f_old - f_ss) * exp(-h / tau) + f_ss;
        m->force[i] = f_new;
        m->cn[i] = (m->cn[i] + s * c_full) * e;
        m->s[i] = s * e;
        if (fatigue) {
            m->f_sum[i] += (f_old + f_new) * 0.5 * h;
        }
    }
}

/* A pulse at time t on the muscles whose mask byte is not 0 (all if mask is NULL). */
void ding_pulse(const ding_state *m, double t, const unsigned char *mask, double tau_c)
{
    for (size_t i = 0; i < m->n; i++) {
        if (mask != NULL && !mask[i]) {
            continue;
        }
        double gap = t - m->last_pulse[i];
        m->s[i] += exp(-gap / tau_c) * m->r0_minus_1[i] + 1.0;
        m->last_pulse[i] = t;
    }
}

/* Apply the fatigue of the mean force f_sum / h held over h seconds;
 * decay = exp(-h / tau_fat), one_minus = 1 - decay. */
void ding_settle(const ding_state *m, double h, double decay, double one_minus, double a_rest,
                 double km_rest, double tau1_rest, double alpha_a, double alpha_km,
                 double alpha_tau1, double tau_fat)
{
    for (size_t i = 0; i < m->n; i++) {
        double f = m->f_sum[i] / h;
        m->a[i] = m->a[i] * decay + (a_rest + alpha_a * f * tau_fat) * one_minus;
        m->km[i] = m->km[i] * decay + (km_rest + alpha_km * f * tau_fat) * one_minus;
        m->tau1[i] = m->tau1[i] * decay + (tau1_rest + alpha_tau1 * f * tau_fat) * one_minus;
        m->r0_minus_1[i] = m->km[i] + 1.04 - 1.0;
        m->f_sum[i] = 0.0;
    }
}

static void step_and_settle(const ding_state *m, double h, const double *p, int fatigue,
                            double *h_sum)
{
    /* DingMuscles.step: p = tau_c, tau2, a_rest, km_rest, tau1_rest, alpha_a, alpha_km,
     * alpha_tau1, tau_fat, fatigue_step_s */
    if (h <= 0) {
        return;
    }
    double e = exp(-h / p[0]);
    double e_half = exp(-0.5 * h / p[0]);
    ding_step(m, h, 0.5 * h / p[0], e_half, h / p[0], e, p[1], fatigue);
    if (fatigue) {
        *h_sum += h;
        if (*h_sum >= p[9]) {
            double decay = exp(-*h_sum / p[8]);
            ding_settle(m, *h_sum, decay, 1 - decay, p[2], p[3], p[4], p[5], p[6], p[7], p[8]);
            *h_sum = 0.0;
        }
    }
}

/* The pulse loop of one run of recruiting ticks [k0, k1) (sim/body/simulate.py's
 * _force_and_fatigue). clock = t_now, next_pulse, end, h_sum (updated).
 * periods and masks are per tick of the run (masks: n bytes a tick). Writes the
 * force after each pulse (mid-way for periods > 30 ms) to forces (n doubles a
 * pulse), its tick to ks and its period to pulse_periods; on the first pulse
 * of each second, a / a_rest to that second's row of tl_fatigue. Stops at the
 * run's end, after max_pulses, or before a pulse whose tick is not in the run
 * (the caller does that one). Returns the number of pulses done. */
long ding_run(const ding_state *m, double *clock, const double *periods,
              const unsigned char *masks, long k0, long k1, long n_ticks, double tick_s,
              long per_second, long *last_sec, double *tl_fatigue, const double *p,
              int fatigue, double *forces, long *ks, double *pulse_periods, long max_pulses)
{
    long count = 0;
    size_t n = m->n;
    while (clock[1] < clock[2] && count < max_pulses) {
        long k = (long)(clock[1] / tick_s + 1e-9);
        if (k > n_ticks - 1) {
            k = n_ticks - 1;
        }
        if (k >= k1) {
            break;
        }
        double period = periods[k - k0];
        step_and_settle(m, clock[1] - clock[0], p, fatigue, &clock[3]);
        clock[0] = clock[1];
        ding_pulse(m, clock[0], masks + (size_t)(k - k0) * n, p[0]);
        if (period > 0.03) { /* unfused twitches peak between pulses: sample mid-way */
            step_and_settle(m, period / 2, p, fatigue, &clock[3]);
            clock[0] += period / 2;
        }
        for (size_t i = 0; i < n; i++) {
            forces[(size_t)count * n + i] = m->force[i];
        }
        ks[count] = k;
        pulse_periods[count] = period;
        count++;
        long sec = k / per_second;
        if (sec != *last_sec) {
            for (size_t i = 0; i < n; i++) {
                tl_fatigue[(size_t)sec * n + i] = m->a[i] / p[2];
            }
            *last_sec = sec;
        }
        clock[1] += period;
    }
    return count;
}
