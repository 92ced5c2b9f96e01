/**
 * X11 keysyms to PC XT (set 1) scancodes for a US keyboard layout, for callers of the SPICE input path that
 * know only the keysym (an RFB-style viewer, a script typing text). SPICE sends scancodes: the guest's
 * own layout turns them into characters, so this table is right exactly when the guest uses a US layout.
 *
 * Scancodes are the PC keyboard's set 1 make codes, as keycodemapdb's `data/keymaps.csv` lists them in its
 * "AT set1 keycode" column; extended keys are written 0xE0xx there and here (0xE048 for Up), as
 * KeyInput.scancode takes them.
 * Keysym values are those of X11's `keysymdef.h`; Latin-1 characters are their own keysym.
 */

/** How a keysym is typed. */
export interface KeyStroke {
  /** The key's make code; extended keys as 0xE0xx. */
  scancode: number;
  /**
   * Which shift level the character needs: 1 with Shift, 0 without; null for keys whose meaning does not
   * depend on Shift (Return, arrows, F-keys, modifiers).
   */
  level: 0 | 1 | null;
  /** A letter: Caps Lock inverts which level gives it. */
  letter: boolean;
}

/** Scancodes of the keys the shift logic must know. */
export const SCANCODE = {
  SHIFT_L: 0x2a, SHIFT_R: 0x36, CONTROL_L: 0x1d, CONTROL_R: 0xe01d, ALT_L: 0x38, ALT_R: 0xe038,
  SUPER_L: 0xe05b, SUPER_R: 0xe05c, CAPS_LOCK: 0x3a,
} as const;

/** Characters of the main block by key: [unshifted, shifted, scancode] (US layout). */
const CHARACTER_KEYS: readonly (readonly [string, string, number])[] = [
  ['1', '!', 0x02], ['2', '@', 0x03], ['3', '#', 0x04], ['4', '$', 0x05], ['5', '%', 0x06], ['6', '^', 0x07],
  ['7', '&', 0x08], ['8', '*', 0x09], ['9', '(', 0x0a], ['0', ')', 0x0b], ['-', '_', 0x0c], ['=', '+', 0x0d],
  ['q', 'Q', 0x10], ['w', 'W', 0x11], ['e', 'E', 0x12], ['r', 'R', 0x13], ['t', 'T', 0x14], ['y', 'Y', 0x15],
  ['u', 'U', 0x16], ['i', 'I', 0x17], ['o', 'O', 0x18], ['p', 'P', 0x19], ['[', '{', 0x1a], [']', '}', 0x1b],
  ['a', 'A', 0x1e], ['s', 'S', 0x1f], ['d', 'D', 0x20], ['f', 'F', 0x21], ['g', 'G', 0x22], ['h', 'H', 0x23],
  ['j', 'J', 0x24], ['k', 'K', 0x25], ['l', 'L', 0x26], [';', ':', 0x27], ["'", '"', 0x28], ['`', '~', 0x29],
  ['\\', '|', 0x2b], ['z', 'Z', 0x2c], ['x', 'X', 0x2d], ['c', 'C', 0x2e], ['v', 'V', 0x2f], ['b', 'B', 0x30],
  ['n', 'N', 0x31], ['m', 'M', 0x32], [',', '<', 0x33], ['.', '>', 0x34], ['/', '?', 0x35],
];

/** Keys whose meaning does not depend on Shift, by keysym (`keysymdef.h` XK_* values). */
const FUNCTION_KEYS: readonly (readonly [number, number])[] = [
  [0x0020, 0x39], // space
  [0xff08, 0x0e], // BackSpace
  [0xff09, 0x0f], // Tab
  [0xff0d, 0x1c], // Return
  [0xff1b, 0x01], // Escape
  [0xff50, 0xe047], // Home
  [0xff51, 0xe04b], // Left
  [0xff52, 0xe048], // Up
  [0xff53, 0xe04d], // Right
  [0xff54, 0xe050], // Down
  [0xff55, 0xe049], // Prior (Page Up)
  [0xff56, 0xe051], // Next (Page Down)
  [0xff57, 0xe04f], // End
  [0xff63, 0xe052], // Insert
  [0xffff, 0xe053], // Delete
  [0xff67, 0xe05d], // Menu
  [0xff8d, 0xe01c], // KP_Enter
  [0xff7f, 0x45], // Num_Lock
  [0xff14, 0x46], // Scroll_Lock
  [0xffe5, SCANCODE.CAPS_LOCK], // Caps_Lock
  [0xffe1, SCANCODE.SHIFT_L], // Shift_L
  [0xffe2, SCANCODE.SHIFT_R], // Shift_R
  [0xffe3, SCANCODE.CONTROL_L], // Control_L
  [0xffe4, SCANCODE.CONTROL_R], // Control_R
  [0xffe9, SCANCODE.ALT_L], // Alt_L
  [0xffea, SCANCODE.ALT_R], // Alt_R
  [0xfe03, SCANCODE.ALT_R], // ISO_Level3_Shift (AltGr sends it)
  [0xffeb, SCANCODE.SUPER_L], // Super_L
  [0xffec, SCANCODE.SUPER_R], // Super_R
];

/** F1–F10 are 0x3B–0x44; F11 and F12 came later and sit at 0x57, 0x58. */
const F_KEYS = [0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58];

/** XK_F1; F2… follow it. */
const XK_F1 = 0xffbe;
/** XK_ISO_Left_Tab: what X reports for Shift+Tab. */
const XK_ISO_LEFT_TAB = 0xfe20;

const TABLE: ReadonlyMap<number, KeyStroke> = (() => {
  const m = new Map<number, KeyStroke>();
  for (const [plain, shifted, scancode] of CHARACTER_KEYS) {
    const letter = plain >= 'a' && plain <= 'z';
    m.set(plain.charCodeAt(0), { scancode, level: 0, letter });
    m.set(shifted.charCodeAt(0), { scancode, level: 1, letter });
  }
  for (const [keysym, scancode] of FUNCTION_KEYS) m.set(keysym, { scancode, level: null, letter: false });
  F_KEYS.forEach((scancode, i) => { m.set(XK_F1 + i, { scancode, level: null, letter: false }); });
  m.set(XK_ISO_LEFT_TAB, { scancode: 0x0f, level: 1, letter: false });
  return m;
})();

/** The key that types `keysym` on a US layout, or null when the table has none. */
export function keysymToKey(keysym: number): KeyStroke | null {
  return TABLE.get(keysym) ?? null;
}

/** True for the two Shift keys (the shift logic tracks whether the caller holds one). */
export function isShiftScancode(scancode: number): boolean {
  return scancode === SCANCODE.SHIFT_L || scancode === SCANCODE.SHIFT_R;
}
