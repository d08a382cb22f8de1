"""Request and answer bodies of templates and template notifications.

Components follow WhatsApp's template format (``HEADER``/``BODY``/``FOOTER``/
``BUTTONS``, upper-case types) with camelCase keys like the rest of the API
(``phoneNumber``, ``otpType``; the snake_case spelling is accepted on input).
Each component and button in an answer also says how many parameters it takes
and their names (``"1"``, ``"2"``... for positional templates).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from tidings.http.schemas import ApiModel, ApiRequest
from tidings.templates.models import Template
from tidings.templates.shape import button_names, component_names


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _number_as_text(value: object) -> object:
    # An order number sent as 1234 means "1234"; WhatsApp parameters are text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Category = Annotated[Literal["MARKETING", "UTILITY", "AUTHENTICATION"], BeforeValidator(_upper)]
TemplateStatus = Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"]
ParameterFormat = Annotated[Literal["POSITIONAL", "NAMED"], BeforeValidator(_upper)]
ComponentType = Annotated[Literal["HEADER", "BODY", "FOOTER", "BUTTONS"], BeforeValidator(_upper)]
HeaderFormat = Annotated[Literal["TEXT", "IMAGE", "DOCUMENT", "VIDEO"], BeforeValidator(_upper)]
ButtonType = Annotated[
    Literal["QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP"], BeforeValidator(_upper)
]
OtpType = Annotated[Literal["COPY_CODE", "ONE_TAP"], BeforeValidator(_upper)]
ParamText = Annotated[str, BeforeValidator(_number_as_text), Field(max_length=4096)]


# Creating a template. Lengths here only bound the request; WhatsApp's limits are
# checked by tidings.templates.validation, which names each broken rule.


class ButtonIn(ApiRequest):
    type: ButtonType
    text: str | None = Field(default=None, max_length=1000, examples=["Shop now"])
    url: str | None = Field(
        default=None,
        max_length=4000,
        description="URL buttons: the link; a trailing {{1}} is filled at send time.",
        examples=["https://shop.example.com/offers/{{1}}"],
    )
    phone_number: str | None = Field(default=None, max_length=40, examples=["+393331234567"])
    otp_type: OtpType | None = Field(default=None, description="OTP buttons: COPY_CODE.")
    example: list[str] | str | None = Field(default=None, description="Example values.")


class ComponentIn(ApiRequest):
    type: ComponentType
    format: HeaderFormat | None = Field(default=None, description="HEADER only; TEXT if absent.")
    text: str | None = Field(default=None, max_length=10_000)
    buttons: list[ButtonIn] | None = Field(default=None, max_length=100)
    example: dict[str, Any] | None = Field(
        default=None, description="Example values, kept as given (WhatsApp's reviewers read them)."
    )


class TemplateCreate(ApiRequest):
    name: str = Field(max_length=2000, examples=["order_update"])
    language: str = Field(max_length=64, examples=["en"])
    category: Category
    parameter_format: ParameterFormat | None = Field(
        default=None,
        description="POSITIONAL ({{1}}) or NAMED ({{first_name}}); inferred if absent.",
    )
    components: list[ComponentIn] = Field(max_length=50)


# Answers


class ButtonOut(ApiModel):
    type: str = Field(examples=["URL"])
    text: str | None = None
    url: str | None = None
    phone_number: str | None = None
    otp_type: str | None = None
    example: list[str] | str | None = None
    parameter_count: int = Field(examples=[1])
    parameter_names: list[str] = Field(examples=[["1"]])


class ComponentOut(ApiModel):
    type: str = Field(examples=["BODY"])
    format: str | None = None
    text: str | None = Field(default=None, examples=["Hi {{1}}, order {{2}} has shipped."])
    buttons: list[ButtonOut] | None = None
    example: dict[str, Any] | None = None
    parameter_count: int = Field(examples=[2])
    parameter_names: list[str] = Field(examples=[["1", "2"]])


class TemplateOut(ApiModel):
    id: str = Field(examples=["tpl_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    name: str = Field(examples=["order_update"])
    language: str = Field(examples=["en"])
    category: str = Field(examples=["UTILITY"])
    status: TemplateStatus
    rejected_reason: str | None = Field(default=None, examples=[None])
    parameter_format: str = Field(examples=["POSITIONAL"])
    components: list[ComponentOut]
    created_at: datetime
    updated_at: datetime


def _button_out(button: dict[str, Any]) -> ButtonOut:
    names = button_names(button)
    return ButtonOut.model_validate(
        {**button, "parameterCount": len(names), "parameterNames": list(names)}
    )


def _component_out(component: dict[str, Any]) -> ComponentOut:
    names = component_names(component)
    values = {**component, "parameterCount": len(names), "parameterNames": list(names)}
    if component.get("buttons") is not None:
        values["buttons"] = [_button_out(button) for button in component["buttons"]]
    return ComponentOut.model_validate(values)


def template_out(template: Template) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        name=template.name,
        language=template.language,
        category=template.category,
        status=template.status,
        rejected_reason=template.rejected_reason,
        parameter_format=template.parameter_format,
        components=[_component_out(component) for component in template.components],
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def template_payload(template: Template) -> dict[str, Any]:
    """The template as the API and the ``template.updated`` webhook show it."""
    return template_out(template).model_dump(mode="json", by_alias=True)


# Sending a template notification


class MediaParameter(ApiRequest):
    type: Literal["image", "document", "video"]
    url: str = Field(max_length=2048, examples=["https://example.com/spring.jpg"])
    filename: str | None = Field(default=None, max_length=240)


class TemplateParameters(ApiRequest):
    header: (
        list[ParamText | MediaParameter] | MediaParameter | dict[str, ParamText] | ParamText | None
    ) = Field(
        default=None,
        # A media object is also a dict of strings: try the object first.
        union_mode="left_to_right",
        description=(
            "A TEXT header's parameter (a list, or an object for named templates); a media "
            'header\'s media as {"type": "image", "url": ...} or just the URL.'
        ),
        examples=[["#1234"]],
    )
    body: list[ParamText] | dict[str, ParamText] | None = Field(
        default=None,
        description="Positional: values in order. Named: an object of name to value.",
        examples=[["Ada", "#1234"]],
    )
    buttons: list[ParamText] | None = Field(
        default=None,
        description=(
            "One value per button that takes a parameter, in button order: a URL "
            "button's {{1}} suffix, a COPY_CODE button's code."
        ),
        examples=[["SPRING24"]],
    )


class NotificationTemplate(ApiRequest):
    name: str = Field(max_length=512, examples=["order_update"])
    language: str = Field(max_length=16, examples=["en"])
    parameters: TemplateParameters = Field(default_factory=TemplateParameters)


class NotificationRequest(ApiRequest):
    to: str = Field(
        max_length=160,
        description="The contact's number (E.164), or its WhatsApp user id "
        "(US.13491208655302741918) for a contact WhatsApp knows by no number.",
        examples=["+393331234567"],
    )
    template: NotificationTemplate
