import { BadRequestException, ConflictException, GoneException, HttpException, Injectable, NotFoundException } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { parseDurationMs } from '../config/duration.js';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import type { CreateEnrolmentCodeDto, EnrolDto } from './dto/enrolment.dto.js';
import type { CreatedEnrolmentCodeView, EnrolmentView } from './dto/enrolment.view.js';
import { canonicalEnrolmentCode, enrolmentCodeHash, newEnrolmentCode } from './enrolment-code.js';
import { EnrolmentRepository, type EnrolmentCodeRow } from './enrolment.repository.js';
import { RecipientEventRepository } from './recipient-events.repository.js';
import type { RequestSigner } from './request-auth.service.js';

/** The longest an enrolment code may stay usable. */
export const MAX_CODE_LIFETIME_MS = 30 * 86_400_000;
/** 40-bit codes collide about never; a few draws make a collision a non-event. */
const CODE_DRAWS = 3;

type Decision = { created: boolean; view: EnrolmentView } | { refusal: HttpException; recipientId: string | null; codeId: string | null };

/** One-time enrolment codes (made by an admin) and the enrolment of an installation key with one. */
@Injectable()
export class EnrolmentService {
  constructor(
    private readonly enrolments: EnrolmentRepository,
    private readonly events: RecipientEventRepository,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  async createCode(dto: CreateEnrolmentCodeDto): Promise<CreatedEnrolmentCodeView> {
    const lifetime = parseDurationMs(dto.expiresIn);
    if (lifetime === null || lifetime <= 0) throw new BadRequestException('expiresIn must be a duration such as "7d", "24h" or "15m"');
    if (lifetime > MAX_CODE_LIFETIME_MS) throw new BadRequestException('expiresIn must be at most 30 days');
    const recipientId = dto.recipientId ?? null;
    if (recipientId !== null) {
      if (dto.name !== undefined || dto.email !== undefined || dto.labels !== undefined) {
        throw new BadRequestException('recipientId enrols a further installation of that recipient: give no name, email or labels with it');
      }
      if ((await this.enrolments.recipientName(recipientId)) === null) throw new NotFoundException(`no recipient ${recipientId}`);
    }
    for (let draw = 0; draw < CODE_DRAWS; draw++) {
      const code = newEnrolmentCode();
      const stored = await this.enrolments.insertCode({
        codeHash: enrolmentCodeHash(code),
        recipientId,
        name: dto.name ?? null,
        email: dto.email ?? null,
        labels: dto.labels ?? [],
        expiresAt: new Date(Date.now() + lifetime),
      });
      if (stored === null) continue;
      await this.events.append({ type: 'enrolment-code-created', recipientId, detail: { codeId: stored.id, expiresAt: stored.expiresAt } });
      return { id: stored.id, code, expiresAt: stored.expiresAt, recipientId };
    }
    throw new Error(`${CODE_DRAWS} enrolment codes in a row were taken already`);
  }

  /**
   * Enrols the signer's key with a code: the first key binds it (201); the same key again gets the same
   * answer (200); any refusal is recorded after the transaction rolled back, so it stays recorded.
   */
  async enrol(dto: EnrolDto, signer: RequestSigner, remoteAddress: string): Promise<{ created: boolean; view: EnrolmentView }> {
    const canonical = canonicalEnrolmentCode(dto.code);
    const decision: Decision =
      canonical === null
        ? { refusal: new BadRequestException('code must be an enrolment code such as 7K3M-Q9XD'), recipientId: null, codeId: null }
        : await this.unitOfWork.transaction(({ manager }) =>
            this.decide(manager, enrolmentCodeHash(canonical), dto, signer, remoteAddress),
          );
    if ('view' in decision) return decision;
    await this.events.append({
      type: 'enrolment-refused',
      recipientId: decision.recipientId,
      fingerprint: signer.fingerprint,
      reason: decision.refusal.message,
      remoteAddress,
      detail: decision.codeId === null ? null : { codeId: decision.codeId },
    });
    throw decision.refusal;
  }

  private async decide(
    manager: EntityManager,
    codeHash: string,
    dto: EnrolDto,
    signer: RequestSigner,
    remoteAddress: string,
  ): Promise<Decision> {
    const code = await this.enrolments.lockCode(manager, codeHash);
    if (code === null) return { refusal: new NotFoundException('unknown enrolment code'), recipientId: null, codeId: null };
    const refuse = (refusal: HttpException, recipientId = code.recipientId) => ({ refusal, recipientId, codeId: code.id });
    const enrolled = await this.enrolments.installationOf(manager, signer.fingerprint);
    if (code.usedBy === signer.fingerprint && enrolled !== null) {
      return { created: false, view: { recipientId: enrolled.recipientId, name: enrolled.name, fingerprint: signer.fingerprint } };
    }
    if (code.usedBy !== null) return refuse(new ConflictException('enrolment code already used by another installation'));
    if (code.expiresAt.getTime() <= Date.now())
      return refuse(new GoneException(`enrolment code expired on ${code.expiresAt.toISOString()}`));
    if (enrolled !== null) {
      return refuse(
        new ConflictException(`this installation is already enrolled (recipient ${enrolled.recipientId})`),
        enrolled.recipientId,
      );
    }
    const recipient = await this.recipientFor(manager, code, dto);
    if (recipient instanceof HttpException) return refuse(recipient);
    await this.enrolments.bindInstallation(manager, code.id, { ...signer, recipientId: recipient.id, enrolledFrom: remoteAddress });
    await this.events.append(
      { type: 'enrolled', recipientId: recipient.id, fingerprint: signer.fingerprint, remoteAddress, detail: { codeId: code.id } },
      manager,
    );
    return { created: true, view: { recipientId: recipient.id, name: recipient.name, fingerprint: signer.fingerprint } };
  }

  /** The code's recipient, or a new one named by the code (or, when it names none, by the request). */
  private async recipientFor(
    manager: EntityManager,
    code: EnrolmentCodeRow,
    dto: EnrolDto,
  ): Promise<{ id: string; name: string } | HttpException> {
    if (code.recipientId !== null) {
      return { id: code.recipientId, name: (await this.enrolments.recipientName(code.recipientId, manager)) ?? '' };
    }
    const name = code.name ?? dto.name;
    if (name === undefined) return new BadRequestException('this enrolment code names no recipient: give your name');
    const id = await this.enrolments.insertRecipient(manager, { name, email: code.email, labels: code.labels });
    return { id, name };
  }
}
