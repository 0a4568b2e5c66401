/**
 * Device properties, as QEMU's qdev properties (include/hw/qdev-properties.h): each device type
 * (a *driver*: "virtio-blk-device", "rv64-riscv-cpu", "virt-machine"...) declares typed
 * properties with defaults; a device's values are resolved in QEMU's order —
 *
 * 1. the property's default (what the newest machine type gets),
 * 2. the machine type's compat list (`{ driver, property, value }`, QEMU's `hw_compat_X_Y`),
 * 3. `-global driver.property=value`, in command-line order,
 * 4. the device's own options (`-device driver,prop=value`, `-cpu rv64,prop=value`, `-M virt,prop=value`).
 *
 * A global or compat entry names a driver or any of its parents ("riscv-cpu" reaches
 * "rv64-riscv-cpu"), as QEMU's object_apply_global_props does through the type hierarchy.
 * Devices read their behaviour from these values, never from a release number.
 *
 * @module
 */

/** QEMU's property types that the machine uses. */
export type PropertyType = "bool" | "uint8" | "uint16" | "uint32" | "uint64" | "string";

export type PropertyValue = boolean | number | bigint | string;

export interface PropertyDefinition {
  readonly name: string;
  readonly type: PropertyType;
  readonly default: PropertyValue;
  /** One line for `-device DRIVER,help`. */
  readonly description?: string;
  /**
   * Only these values are accepted (the device has no other behaviour to offer), e.g. a CPU
   * extension this CPU does not implement: `f` accepts only `off`.
   */
  readonly allowed?: readonly PropertyValue[];
  /** Why a value outside `allowed` is refused. */
  readonly notAllowedReason?: string;
}

/** A device type: its driver name, parent type and properties. */
export interface DeviceClass {
  readonly driver: string;
  /** Parent types, nearest first (globals naming a parent apply). */
  readonly parents?: readonly string[];
  readonly description?: string;
  readonly properties: readonly PropertyDefinition[];
}

/** One `{ driver, property, value }` entry: a compat list line or a `-global`. */
export interface GlobalProperty {
  readonly driver: string;
  readonly property: string;
  readonly value: string;
}

/** A property or value that does not exist or does not parse (QEMU's wording where it has one). */
export class PropertyError extends Error {
  override name = "PropertyError";
}

const UINT_MAX: Record<string, bigint> = {
  uint8: 0xffn,
  uint16: 0xffffn,
  uint32: 0xffff_ffffn,
  uint64: 0xffff_ffff_ffff_ffffn,
};

/** Parses `text` as a value of `def` (on/off/true/false/yes/no for bools; decimal or 0x hex for integers). */
export function parsePropertyValue(driver: string, def: PropertyDefinition, text: string): PropertyValue {
  let value: PropertyValue;
  switch (def.type) {
    case "bool":
      if (text === "on" || text === "true" || text === "yes") value = true;
      else if (text === "off" || text === "false" || text === "no") value = false;
      else throw new PropertyError(`Parameter '${def.name}' expects 'on' or 'off'`);
      break;
    case "string":
      value = text;
      break;
    default: {
      if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text)) throw new PropertyError(`Parameter '${def.name}' expects ${def.type}`);
      const n = BigInt(text);
      const max = UINT_MAX[def.type]!;
      if (n > max) {
        throw new PropertyError(`Property ${driver}.${def.name} doesn't take value ${text} (minimum: 0, maximum: ${max})`);
      }
      value = def.type === "uint64" ? n : Number(n);
    }
  }
  if (def.allowed !== undefined && !def.allowed.some((a) => a === value)) {
    throw new PropertyError(
      `Property ${driver}.${def.name} doesn't take value '${text}'${def.notAllowedReason === undefined ? "" : `: ${def.notAllowedReason}`}`,
    );
  }
  return value;
}

/** Formats a value the way `-device DRIVER,help` and `info qtree` show it. */
export function formatPropertyValue(def: PropertyDefinition, value: PropertyValue): string {
  if (def.type === "bool") return value ? "true" : "false";
  if (def.type === "string") return `"${String(value)}"`;
  return String(value);
}

/** The resolved property values of one device. */
export class DeviceProperties {
  readonly deviceClass: DeviceClass;
  readonly #values = new Map<string, PropertyValue>();
  /** Where each value came from ("default", "compat virt-1.0", "-global", "option"). */
  readonly #origin = new Map<string, string>();

  constructor(deviceClass: DeviceClass) {
    this.deviceClass = deviceClass;
    for (const p of deviceClass.properties) {
      this.#values.set(p.name, p.default);
      this.#origin.set(p.name, "default");
    }
  }

  #def(name: string): PropertyDefinition {
    const def = this.deviceClass.properties.find((p) => p.name === name);
    if (def === undefined) throw new PropertyError(`Property '${this.deviceClass.driver}.${name}' not found`);
    return def;
  }

  /** Sets a property from text (QEMU's object_property_parse). */
  set(name: string, text: string, origin: string): void {
    const def = this.#def(name);
    this.#values.set(name, parsePropertyValue(this.deviceClass.driver, def, text));
    this.#origin.set(name, origin);
  }

  has(name: string): boolean {
    return this.deviceClass.properties.some((p) => p.name === name);
  }

  get(name: string): PropertyValue {
    this.#def(name);
    return this.#values.get(name)!;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    if (typeof v !== "boolean") throw new TypeError(`${this.deviceClass.driver}.${name} is not a bool`);
    return v;
  }

  number(name: string): number {
    const v = this.get(name);
    if (typeof v !== "number") throw new TypeError(`${this.deviceClass.driver}.${name} is not a number`);
    return v;
  }

  bigint(name: string): bigint {
    const v = this.get(name);
    if (typeof v !== "bigint") throw new TypeError(`${this.deviceClass.driver}.${name} is not a uint64`);
    return v;
  }

  string(name: string): string {
    const v = this.get(name);
    if (typeof v !== "string") throw new TypeError(`${this.deviceClass.driver}.${name} is not a string`);
    return v;
  }

  origin(name: string): string {
    this.#def(name);
    return this.#origin.get(name)!;
  }

  /** Every property with its value, in declaration order. */
  entries(): { name: string; value: PropertyValue; origin: string; definition: PropertyDefinition }[] {
    return this.deviceClass.properties.map((d) => ({ name: d.name, value: this.#values.get(d.name)!, origin: this.#origin.get(d.name)!, definition: d }));
  }
}

/** Whether a global or compat entry for `driver` applies to a device of class `cls`. */
export function globalApplies(cls: DeviceClass, driver: string): boolean {
  return cls.driver === driver || (cls.parents ?? []).includes(driver);
}

export interface ResolveLayers {
  /** The machine type's compat list, already in application order. */
  readonly compat?: readonly GlobalProperty[];
  /** Its name, for the origin shown by {@link DeviceProperties.origin}. */
  readonly machineType?: string;
  /** `-global` entries, in command-line order. */
  readonly globals?: readonly GlobalProperty[];
  /** The device's own options (`-device ...,prop=value`). */
  readonly options?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
}

/**
 * A device's properties: defaults, then the machine type's compat entries, then `-global`s,
 * then its own options. A compat entry for a property the class lacks is a programming error
 * (thrown); a `-global` or option naming an unknown property is the user's (PropertyError).
 */
export function resolveProperties(cls: DeviceClass, layers: ResolveLayers = {}): DeviceProperties {
  const props = new DeviceProperties(cls);
  for (const g of layers.compat ?? []) {
    if (!globalApplies(cls, g.driver)) continue;
    if (!props.has(g.property)) throw new Error(`compat property ${g.driver}.${g.property} does not exist on ${cls.driver}`);
    props.set(g.property, g.value, `compat ${layers.machineType ?? "machine type"}`);
  }
  for (const g of layers.globals ?? []) {
    if (!globalApplies(cls, g.driver)) continue;
    if (!props.has(g.property)) throw new PropertyError(`can't apply global ${g.driver}.${g.property}=${g.value}: Property '${cls.driver}.${g.property}' not found`);
    try {
      props.set(g.property, g.value, "-global");
    } catch (e) {
      throw e instanceof PropertyError ? new PropertyError(`can't apply global ${g.driver}.${g.property}=${g.value}: ${e.message}`) : e;
    }
  }
  const options = layers.options;
  if (options !== undefined) {
    const list = options instanceof Map ? [...options] : Object.entries(options as Record<string, string>);
    for (const [k, v] of list) props.set(k, v, "option");
  }
  return props;
}

/** `-global` text (`driver.property=value`) → a GlobalProperty. */
export function parseGlobalProperty(text: string): GlobalProperty {
  const m = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(text);
  if (m === null) throw new PropertyError(`Invalid -global '${text}': expected DRIVER.PROPERTY=VALUE`);
  return { driver: m[1]!, property: m[2]!, value: m[3]! };
}

/** QEMU's `-device DRIVER,help` listing. */
export function formatDeviceHelp(cls: DeviceClass, values?: DeviceProperties): string {
  const lines = cls.properties.map((p) => {
    const left = `  ${p.name}=<${p.type}>`;
    const value = values?.get(p.name) ?? p.default;
    const desc = p.description === undefined ? "" : `${p.description} `;
    return `${left.padEnd(26)}- ${desc}(default: ${formatPropertyValue(p, value)})`;
  });
  return `${cls.driver} options:\n${lines.join("\n")}\n`;
}
