// The agent's parts from the client's modules: the outbox (src/client/outbox.ts), the confirmation
// frame and answer check (src/client/confirm-client.ts), the signed resumable pull (commands/fetch.ts).
import { checkAnswer, confirmationFrame, ConfirmOptions } from '../confirm-client.js';
import { CommandContext } from '../context.js';
import { pullBundle } from '../commands/fetch.js';
import { KeptInOutbox } from '../outbox.js';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { RequestSigner } from '../signed-request.js';
import { AgentDeps } from './agent.js';

export function agentDeps(ctx: CommandContext, signer: RequestSigner, out: string, confirm: ConfirmOptions = {}): AgentDeps {
  const outbox = ctx.home.outbox();
  return {
    home: ctx.home,
    signer,
    checkAnswer,
    confirmationFrame,
    outbox: {
      list: () => outbox.list(),
      flush: async (deliveryId) => {
        const entry = await outbox.get(deliveryId);
        if (!entry) throw new DcxError(ExitCode.Failure, `delivery ${deliveryId} is no longer in the outbox`);
        // send records a failure (and the server's Retry-After) in the entry itself.
        return outbox.send(entry, confirm);
      },
    },
    // No progress bars: the agent writes one line per delivery.
    pull: (url, confirmWith) => pullBundle(url, { out, signer, confirm, confirmWith }, { ...ctx, progress: false }),
    isKept: (error) => error instanceof KeptInOutbox,
  };
}
