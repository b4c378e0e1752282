import { BadRequestException, ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import { RecipientsRepository } from '../recipients/recipients.repository.js';
import type { CreateGroupDto, UpdateGroupDto } from './dto/group.dto.js';
import type { GroupDetailView, GroupView } from './dto/group.view.js';
import { GroupsRepository, type GroupRow } from './groups.repository.js';

/** Unknown ids named in a 400, at most this many (and how many more). */
const NAMED_UNKNOWN_IDS = 20;

/** Groups of recipients: static members and a label selector, resolved whenever the group is used. */
@Injectable()
export class GroupsService {
  constructor(
    private readonly groups: GroupsRepository,
    private readonly recipients: RecipientsRepository,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  async create(dto: CreateGroupDto): Promise<GroupDetailView> {
    const name = dto.name.trim();
    await this.refuseUnknownRecipients(dto.members ?? []);
    const id = await this.unitOfWork.transaction(async ({ manager }) => {
      const created = await this.groups.insert(manager, name, dto.selector?.labels ?? null);
      if (created === null) throw nameTaken(name);
      if (dto.members?.length) await this.groups.addMembers(manager, created, dto.members);
      return created;
    });
    return this.get(id);
  }

  async list(): Promise<GroupView[]> {
    return (await this.groups.list()).map(groupView);
  }

  async get(id: string): Promise<GroupDetailView> {
    const group = await this.groups.findById(id);
    if (group === null) throw new NotFoundException(`no group ${id}`);
    const members = await this.groups.membersOf(id);
    return {
      ...groupView(group),
      members: members.map(({ member, selected, ...recipient }) => ({
        ...recipient,
        via: [...(member ? ['member' as const] : []), ...(selected ? ['selector' as const] : [])],
      })),
    };
  }

  /** Renames, adds and removes static members, replaces or removes the selector: all or nothing. */
  async update(id: string, dto: UpdateGroupDto): Promise<GroupDetailView> {
    await this.refuseUnknownRecipients(dto.addMembers ?? []);
    await this.unitOfWork.transaction(({ manager }) => this.change(manager, id, dto));
    return this.get(id);
  }

  private async change(manager: EntityManager, id: string, dto: UpdateGroupDto): Promise<void> {
    if (!(await this.groups.lock(manager, id))) throw new NotFoundException(`no group ${id}`);
    const name = dto.name?.trim();
    if (name !== undefined && !(await this.groups.rename(manager, id, name))) throw nameTaken(name);
    if (dto.selector !== undefined) await this.groups.setSelector(manager, id, dto.selector?.labels ?? null);
    if (dto.removeMembers?.length) await this.groups.removeMembers(manager, id, dto.removeMembers);
    if (dto.addMembers?.length) await this.groups.addMembers(manager, id, dto.addMembers);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.groups.delete(id))) throw new NotFoundException(`no group ${id}`);
  }

  private async refuseUnknownRecipients(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const unknown = await this.recipients.unknownIds(ids.map((id) => id.toLowerCase()));
    if (unknown.length === 0) return;
    const named = unknown.slice(0, NAMED_UNKNOWN_IDS).join(', ');
    const more = unknown.length > NAMED_UNKNOWN_IDS ? ` and ${unknown.length - NAMED_UNKNOWN_IDS} more` : '';
    throw new BadRequestException(`unknown recipients: ${named}${more}`);
  }
}

function groupView({ selectorLabels, ...group }: GroupRow): GroupView {
  return { ...group, selector: selectorLabels === null ? null : { labels: selectorLabels } };
}

function nameTaken(name: string): ConflictException {
  return new ConflictException(`a group named ${JSON.stringify(name)} already exists`);
}
