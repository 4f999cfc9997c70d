/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _INSANE_VERSION_H
#define _INSANE_VERSION_H

#define INSANE_VERSION "0.1.0"

#endif /* _INSANE_VERSION_H */
