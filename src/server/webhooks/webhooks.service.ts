import { Injectable, NotFoundException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { CreateWebhookDto } from './dto/create-webhook.dto.js';
import {
  CreatedWebhookView,
  toAttemptView,
  toWebhookView,
  WebhookAttemptView,
  WebhookDetailView,
  WebhookView,
} from './dto/webhook.view.js';
import { WebhookAttempt } from './webhook-attempt.entity.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';
import { WebhookJobRepository } from './webhook-job.repository.js';
import { newWebhookSecret } from './webhook-signature.js';
import { Webhook } from './webhook.entity.js';

const RECENT_ATTEMPTS = 20;

/** The admin side of webhooks: register, list, inspect, remove. Sending is the dispatcher's. */
@Injectable()
export class WebhooksService {
  constructor(
    @InjectRepository(Webhook) private readonly webhooks: Repository<Webhook>,
    private readonly jobs: WebhookJobRepository,
    @InjectRepository(WebhookAttempt) private readonly attempts: Repository<WebhookAttempt>,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  async create(dto: CreateWebhookDto): Promise<CreatedWebhookView> {
    const secret = dto.secret ?? newWebhookSecret();
    const webhook = await this.webhooks.save(this.webhooks.create({ url: dto.url, secret, events: dto.events ?? null, active: true }));
    this.dispatcher.webhooksChanged(1);
    return { ...toWebhookView(webhook), secret };
  }

  async list(): Promise<WebhookView[]> {
    return (await this.webhooks.find({ order: { createdAt: 'ASC', id: 'ASC' } })).map(toWebhookView);
  }

  async get(id: string): Promise<WebhookDetailView> {
    const webhook = await this.find(id);
    const jobs = await this.jobs.countByState(id);
    return { ...toWebhookView(webhook), jobs, recentAttempts: await this.attemptsOf(id, RECENT_ATTEMPTS) };
  }

  async attemptsOf(id: string, limit: number): Promise<WebhookAttemptView[]> {
    await this.find(id);
    const rows = await this.attempts.find({ where: { webhookId: id }, order: { id: 'DESC' }, take: limit });
    return rows.map(toAttemptView);
  }

  /** Removes the webhook, its pending jobs and its attempt log. */
  async remove(id: string): Promise<void> {
    const result = await this.webhooks.delete({ id });
    if (!result.affected) throw new NotFoundException(`no webhook ${id}`);
    this.dispatcher.webhooksChanged(-1);
  }

  private async find(id: string): Promise<Webhook> {
    const webhook = await this.webhooks.findOne({ where: { id } });
    if (!webhook) throw new NotFoundException(`no webhook ${id}`);
    return webhook;
  }
}
