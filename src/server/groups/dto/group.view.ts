import { ApiProperty, PickType } from '@nestjs/swagger';
import { RecipientView } from '../../recipients/dto/recipient.view.js';

export class GroupSelectorView {
  @ApiProperty({ type: [String] })
  labels: string[];
}

export class GroupView {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ type: GroupSelectorView, nullable: true })
  selector: GroupSelectorView | null;
  @ApiProperty()
  createdAt: Date;
  @ApiProperty({ description: 'static members' })
  memberCount: number;
  @ApiProperty({ description: 'recipients the group resolves to now: static members and those the selector matches' })
  resolvedCount: number;
}

/** A member as the recipients list shows it, and why it is in the group. */
export class GroupMemberView extends PickType(RecipientView, ['id', 'name', 'email', 'labels'] as const) {
  @ApiProperty({ enum: ['member', 'selector'], isArray: true, description: 'why the recipient is in the group' })
  via: ('member' | 'selector')[];
}

export class GroupDetailView extends GroupView {
  @ApiProperty({ type: [GroupMemberView], description: 'resolved now, by name' })
  members: GroupMemberView[];
}
