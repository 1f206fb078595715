/*
 * A DCMI "Get Power Reading" answer for OpenIPMI's ipmi_sim, written for powerhub's tests.
 * ipmi_sim answers basic IPMI but not DCMI (completion 0xC1); loaded with
 *     loadlib "/path/dcmi_power.so" "CURRENT MIN MAX AVG [STATE_FILE]"
 * in lan.conf it answers group extension 0xDC, command 0x02, with those watts, as a real BMC would.
 * With STATE_FILE, each answer's power reading state byte is read from that file (hex, e.g. "40": measurement
 * active, "00": not active, as ipmitool's "deactivated"), so a test can switch the measurement off and on.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <OpenIPMI/msg.h>
#include <OpenIPMI/mcserv.h>

#define DCMI_GROUP 0xDC
#define DCMI_GET_POWER_READING 0x02

static unsigned int watts[4] = {250, 180, 420, 260};  /* current, min, max, avg */
static char state_file[512];

static unsigned char reading_state(void)
{
    unsigned int state = 0x40;  /* power measurement active */
    FILE *f;
    if (!state_file[0] || !(f = fopen(state_file, "r")))
        return state;
    if (fscanf(f, "%x", &state) != 1)
        state = 0x40;
    fclose(f);
    return (unsigned char) state;
}

static void put16(unsigned char *p, unsigned int v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = (v >> 24) & 0xff;
}

static void handle_dcmi(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len, void *cb_data)
{
    (void) mc; (void) cb_data;
    if (msg->cmd != DCMI_GET_POWER_READING) {
        rdata[0] = 0xC1;  /* invalid command */
        *rdata_len = 1;
        return;
    }
    rdata[0] = 0x00;  /* completion code */
    rdata[1] = DCMI_GROUP;
    put16(rdata + 2, watts[0]);
    put16(rdata + 4, watts[1]);
    put16(rdata + 6, watts[2]);
    put16(rdata + 8, watts[3]);
    put32(rdata + 10, (uint32_t) time(NULL));  /* timestamp */
    put32(rdata + 14, 1000);  /* statistics period, ms */
    rdata[18] = reading_state();
    *rdata_len = 19;
}

int ipmi_sim_module_init(sys_data_t *sys, const char *initstr)
{
    (void) sys;
    if (initstr && *initstr)
        sscanf(initstr, "%u %u %u %u %511s", &watts[0], &watts[1], &watts[2], &watts[3], state_file);
    ipmi_emu_register_group_extension_handler(DCMI_GROUP, handle_dcmi, NULL);
    return 0;
}
