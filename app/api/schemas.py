"""Request and response models of the student's own data (/api/v1/me, /api/v1/identity/check).

They validate what comes in and describe what goes out; /api/v1/openapi.json is generated from
them. Nothing here carries an openid, a user id or an unmasked ID number or name.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.services.id_documents import DocumentType


class ApiErrorBody(BaseModel):
    code: int
    message: str = Field(examples=["请先登录"])


class ApiError(BaseModel):
    """401 (not signed in) and 400 (CSRF token missing or wrong): one message for the whole page."""

    error: ApiErrorBody


class IdentityIn(BaseModel):
    """What the student types on 实名绑定 (修改 sends the same)."""

    model_config = ConfigDict(extra="forbid")

    id_type: DocumentType = Field(description="证件类型", examples=["resident_id"])
    # Generous limits: the service trims and normalises; these only stop absurd bodies.
    id_number: str = Field(max_length=40, description="证件号码（可含空格，全角字符会被转换）")
    name: str = Field(max_length=100, description="姓名，与证件一致")


class IdentityCheckIn(BaseModel):
    """A check while the student types: either field may still be empty (not both)."""

    model_config = ConfigDict(extra="forbid")

    id_type: DocumentType = Field(description="证件类型")
    id_number: str = Field(default="", max_length=40, description="证件号码（可不填）")
    name: str = Field(default="", max_length=100, description="姓名（可不填）")


class IdentityCheckOut(BaseModel):
    """Only what was sent is checked; fields about the number are null when no number was sent."""

    id_type: DocumentType
    id_type_label: str
    number_masked: str | None = Field(
        description="规范化后的证件号码（已脱敏）", examples=["2101**********0011"]
    )
    birth_date: date | None = Field(description="由 18 位号码推出的出生日期")
    sex: str | None = Field(description="由 18 位号码推出的性别：男 / 女")
    region: str | None = Field(description="号码所属地区（省份，或香港、澳门、台湾）")
    confirm: str | None = Field(description="给学生核对的一句话", examples=["请核对：1990年1月1日出生，男"])


class IdentityOut(BaseModel):
    id_type: DocumentType
    id_type_label: str
    number_masked: str = Field(examples=["2101**********0011"])
    name_masked: str = Field(examples=["张*"])
    birth_date: date | None
    sex: str | None
    locked: bool = Field(description="已缴费提交核验：不能再修改或取消绑定")
    locked_message: str | None
    bound_at: datetime


class SchoolOut(BaseModel):
    code: str
    name: str
    province: str
    city: str


class BatchOut(BaseModel):
    id: int
    name: str = Field(examples=["成人教育 2022 年上学位申请"])
    education: str
    opens_at: datetime
    closes_at: datetime
    is_open: bool
    fee_fen: int = Field(description="核验费，单位：分")
    fee_label: str = Field(examples=["2 元"])
    review_days: str = Field(examples=["7–10 天"])
    photo_spec: str = Field(
        description="照片要求（文字）", examples=["480×640 像素，JPG 格式，100–200 KB，浅蓝色背景"]
    )


class EnrollmentOut(BaseModel):
    school: SchoolOut
    batch: BatchOut
    locked: bool
    linked_at: datetime


class ProgressOut(BaseModel):
    step: str = Field(
        description="下一步：办理清单的当前步骤（bind / school / notice / photo / submit / pay / verify / "
        "review / confirm），无事可办时为 result"
    )
    title: str
    message: str
    path: str = Field(description="下一步的页面")


class StepOut(BaseModel):
    key: str = Field(
        description="bind / school / notice / photo / submit / pay / verify / review / confirm / after"
    )
    label: str = Field(description="步骤名称，如「实名绑定」")
    status: Literal["done", "current", "todo", "locked"] = Field(
        description="done 已完成 / current 当前步骤 / todo 待办 / locked 暂不能办理（窗口未开或信息已锁定）"
    )
    url: str = Field(description="该步骤的页面")
    hint: str = Field(description="当前步骤要做什么，或锁定的原因；其他步骤为空")


class MeOut(BaseModel):
    identity: IdentityOut | None
    enrollment: EnrollmentOut | None
    progress: ProgressOut
    steps: list[StepOut] = Field(description="办理清单：按批次流程排列的步骤，至多一个 current")
