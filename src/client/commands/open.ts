import { CommandContext } from '../context.js';
import { acceptBundle, DeliveryResult } from '../accept-bundle.js';
import { ConfirmOptions } from '../confirm-client.js';
import { deliveryJson, deliveryText } from './report.js';

export interface OpenOptions {
  out: string;
  json?: boolean;
  trust?: boolean;
  /** How the confirmation travels (--via, --confirm-timeout). */
  confirm?: ConfirmOptions;
}

/** `dcx open <file.dcx>`: a bundle saved by a browser (or anything else) is verified, saved and confirmed. */
export async function openCommand(file: string, options: OpenOptions, ctx: CommandContext): Promise<DeliveryResult> {
  const result = await acceptBundle(file, ctx.home, {
    outDir: options.out,
    pinPolicy: options.trust ? { kind: 'trust' } : { kind: 'pinned' },
    notice: ctx.notice,
    progress: ctx.progress,
    confirm: options.confirm,
  });
  ctx.out(options.json ? JSON.stringify(deliveryJson(result)) : deliveryText(result));
  return result;
}
