/**
 * Emulator faults: typed Error subclasses. Driver-level errors are not exceptions; they follow
 * Linux (negative errno, null, DMA_MAPPING_ERROR).
 */

/** Base class of every error the emulator throws. */
export class DmalabError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A bad argument to a kernel call or harness method; `argument` names it. */
export class InvalidArgumentError extends DmalabError {
  readonly argument: string
  readonly function: string
  constructor(fn: string, argument: string, problem: string) {
    super(`${fn}: argument '${argument}' ${problem}`)
    this.argument = argument
    this.function = fn
  }
}

/** A bad boot option; `option` names it. */
export class BootOptionError extends DmalabError {
  readonly option: string
  constructor(option: string, problem: string) {
    super(`boot: option '${option}' ${problem}`)
    this.option = option
  }
}

/** A kernel function was called outside any task of any system. */
export class OutsideTaskError extends DmalabError {
  readonly function: string
  constructor(fn: string) {
    super(`${fn}() called outside a task: kernel calls must run inside sys.run(), a probe, a handler or another kernel context`)
    this.function = fn
  }
}

/**
 * What Linux would BUG() on, or a JavaScript exception escaping driver code (the equivalent of a
 * NULL dereference). The offending task stops; `cause` is the original error.
 */
export class KernelOops extends DmalabError {
  readonly task: string
  constructor(message: string, task: string, options?: ErrorOptions) {
    super(message, options)
    this.task = task
  }
}
