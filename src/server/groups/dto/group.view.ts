import { ApiProperty } from '@nestjs/swagger';

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

export class GroupMemberView {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ nullable: true, type: String })
  email: string | null;
  @ApiProperty({ type: [String] })
  labels: string[];
  @ApiProperty({ enum: ['member', 'selector'], isArray: true, description: 'why the recipient is in the group' })
  via: ('member' | 'selector')[];
}

export class GroupDetailView extends GroupView {
  @ApiProperty({ type: [GroupMemberView], description: 'resolved now, by name' })
  members: GroupMemberView[];
}
