package clerktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The error answers below follow Clerk's published error catalogue
// (clerk/clerk-docs, data/api_errors.json): each names the catalogue
// entry it copies. Where the catalogue leaves a message empty, the fake
// writes its own and the package documentation says so.

// apiError is one entry of Clerk's error body (the ClerkError schema of
// the Backend API's OpenAPI specification).
type apiError struct {
	Code        string         `json:"code"`
	Message     string         `json:"message"`
	LongMessage string         `json:"long_message"`
	Meta        map[string]any `json:"meta"`
}

// clerkError is an error answer: a status and one or more errors.
type clerkError struct {
	status     int
	errs       []apiError
	retryAfter time.Duration // a Retry-After header when > 0
}

func newError(status int, code, msg, long string) *clerkError {
	return &clerkError{status: status, errs: []apiError{{Code: code, Message: msg, LongMessage: long, Meta: map[string]any{}}}}
}

// paramError is a 422 about one parameter, with meta.param_name set as
// Clerk sets it.
func paramError(code, param, msg, long string) apiError {
	return apiError{Code: code, Message: msg, LongMessage: long, Meta: map[string]any{"param_name": param}}
}

func unprocessable(errs ...apiError) *clerkError {
	return &clerkError{status: http.StatusUnprocessableEntity, errs: errs}
}

// Catalogue entries.

// InvalidRequestBody (requests.go).
func errRequestBodyInvalid() *clerkError {
	return newError(http.StatusBadRequest, "request_body_invalid", "Request body invalid",
		"The request body is invalid. Please consult the API documentation for more information.")
}

// UserNotFound (users.go).
func errUserNotFound(id string) *clerkError {
	return newError(http.StatusNotFound, "resource_not_found", "not found", "No user was found with id "+id)
}

// ResourceNotFound (user_settings.go).
func errResourceNotFound() *clerkError {
	return newError(http.StatusNotFound, "resource_not_found", "not found", "Resource not found")
}

// InvalidAuthentication (auth.go).
func errAuthenticationInvalid() *clerkError {
	return newError(http.StatusUnauthorized, "authentication_invalid", "Invalid authentication",
		"Unable to authenticate the request, you need to supply an active session")
}

// InvalidAuthorizationHeaderFormat (auth.go).
func errAuthorizationHeaderFormat() *clerkError {
	return newError(http.StatusUnauthorized, "authorization_header_format_invalid", "Invalid Authorization header format",
		"Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'")
}

// InvalidClerkSecretKey (auth.go).
func errClerkKeyInvalid() *clerkError {
	const msg = "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct."
	return newError(http.StatusUnauthorized, "clerk_key_invalid", msg, msg)
}

// TooManyRequests (internal.go). Clerk's rate-limit answers always carry
// Retry-After (clerk-docs, guides/how-clerk-works/system-limits.mdx).
func errTooManyRequests(retryAfter time.Duration) *clerkError {
	e := newError(http.StatusTooManyRequests, "too_many_requests", "Too many requests", "Too many requests, retry later")
	e.retryAfter = max(retryAfter, time.Second)
	return e
}

// Unexpected (internal.go).
func errInternal(status int) *clerkError {
	return newError(status, "internal_clerk_error", "Oops, an unexpected error occurred",
		"There was an internal error on our servers. We've been notified and are working on fixing it.")
}

// FormUnknownParameter (forms.go).
func errParamUnknown(param string) apiError {
	return paramError("form_param_unknown", param, "is unknown", param+" is not a valid parameter for this request.")
}

// FailedToParseRequestBody (requests.go): a parameter of the wrong JSON
// type.
func errParamType(param, got, want string) apiError {
	return paramError("form_param_value_invalid", param, "is invalid",
		fmt.Sprintf("%s is invalid. Received %s, must be of type %s.", param, got, want))
}

// FormMissingParameter (forms.go).
func errParamMissing(param string) apiError {
	return paramError("form_param_missing", param, "is missing", param+" must be included.")
}

// FormInvalidParameterValue (forms.go).
func errParamValue(param, value string) apiError {
	return paramError("form_param_value_invalid", param, "is invalid",
		value+" does not match one of the allowed values for parameter "+param)
}

// FormInvalidTypeParameter (forms.go), for query parameters.
func errQueryParamType(param, typ string) apiError {
	return paramError("form_param_type_invalid", param, "is invalid", "`"+param+"` must be a `"+typ+"`.")
}

// FormParameterValueTooLarge (forms.go).
func errParamTooLarge(param string, limit int) apiError {
	return paramError("form_param_value_too_large", param, "Value too large",
		"The value of "+param+" can't be greater than "+strconv.Itoa(limit))
}

// FormInvalidDate (forms.go): a timestamp query parameter that is not
// Unix milliseconds.
func errInvalidDate(param string) apiError {
	const msg = "Date values must be given in Unix millisecond timestamp format."
	return paramError("form_param_invalid_date", param, msg, msg)
}

// FormInvalidTime (forms.go): a body date that is not RFC 3339.
func errInvalidTime(param string) apiError {
	return paramError("form_param_invalid_time", param, "invalid format",
		param+" must contain a datetime specified in RFC3339 format (e.g. `2022-10-20T10:00:27.645Z`).")
}

// FormMaximumParametersExceeded (forms.go): an array query parameter
// given more than 100 times.
func errTooManyValues(param string) apiError {
	return paramError("form_param_duplicate", param, "is duplicate",
		param+" is included more than the maximum of 100 times.")
}

// FormParameterNotAllowedConditionally (forms.go).
func errParamDisallowedWhen(param, cond, value string) apiError {
	return paramError("form_conditional_param_disallowed", param, "is not allowed",
		"`"+param+"` isn't allowed when `"+cond+"` is "+value+".")
}

// FormParameterNotAllowedIfAnotherParameterIsPresent (forms.go).
func errParamDisallowedWith(param, other string) apiError {
	return paramError("form_conditional_param_disallowed", param, "is not allowed",
		"`"+param+"` isn't allowed when `"+other+"` is present.")
}

// FormMissingConditionalParameterOnExistence (forms.go).
func errParamRequiredWith(missing, present string) apiError {
	return paramError("form_conditional_param_missing", missing, "is missing",
		"`"+missing+"` is required when `"+present+"` is present.")
}

// FormParameterArrayLengthMismatch (forms.go).
func errArrayLength(param, other string) apiError {
	return paramError("form_param_array_length_mismatch", param, "length mismatch",
		param+" must contain exactly one item for each item in "+other+".")
}

// FormIdentifierExists (forms.go; short message "That %s is taken.
// Please try another." as published on clerk.com/docs/errors/forms).
func errIdentifierExists(param, what string) apiError {
	msg := "That " + what + " is taken. Please try another."
	return paramError("form_identifier_exists", param, msg, msg)
}

// FormInvalidEmailAddress (forms.go).
func errInvalidEmail(param string) apiError {
	return paramError("form_param_format_invalid", param, "is invalid", param+" must be a valid email address.")
}

// FormInvalidPhoneNumber (forms.go).
func errInvalidPhone(param string) apiError {
	return paramError("form_param_format_invalid", param, "is invalid",
		param+" must be a valid phone number according to E.164 international standard.")
}

// FormInvalidWeb3EthWalletAddress (forms.go).
func errInvalidWallet(param string) apiError {
	return paramError("form_param_format_invalid", param, "is invalid",
		param+" must be a valid web3 wallet address that starts with 0x and contains 40 hexadecimal characters.")
}

// FormParameterSizeTooLarge (forms.go; the catalogue gives no message).
func errParamTooBig(param string, limit int) apiError {
	return paramError("form_param_exceeds_allowed_size", param, "exceeds the maximum allowed size",
		fmt.Sprintf("%s exceeds the maximum allowed size of %d bytes.", param, limit))
}

// FormInvalidPasswordLengthTooShort (forms.go; short message "Passwords
// must be %d characters or more." as published on
// clerk.com/docs/errors/forms).
func errPasswordTooShort(param string) apiError {
	msg := fmt.Sprintf("Passwords must be %d characters or more.", minPasswordLen)
	return paramError("form_password_length_too_short", param, msg, msg)
}

// FormMissingResource (forms.go).
func errMissingResource(param string) apiError {
	return paramError("form_resource_not_found", param, "is missing",
		"The resource associated with the supplied "+param+" was not found.")
}

// FormUnverifiedIdentification (forms.go).
func errUnverified(param string) apiError {
	return paramError("form_verification_needed", param, "is unverified",
		"This identification needs to be verified before you can perform this action.")
}

// NoPasswordSet (users.go).
func errNoPasswordSet() *clerkError {
	return newError(http.StatusBadRequest, "no_password_set", "no password set",
		"This user does not have a password set for their account")
}

// IncorrectPassword (users.go).
func errIncorrectPassword() *clerkError {
	return newError(http.StatusUnprocessableEntity, "incorrect_password", "incorrect password",
		"The provided password is not the one the user has set")
}

// write writes the error body, in the ClerkErrors shape, with a
// Retry-After header when the error carries one.
func (e *clerkError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.retryAfter)))
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors  []apiError `json:"errors"`
		TraceID string     `json:"clerk_trace_id"`
	}{Errors: e.errs, TraceID: w.Header().Get("Clerk-Trace-Id")})
}

// retryAfterSeconds rounds d up to whole seconds, at least 1: Clerk's
// Retry-After is "the number of seconds after which the block expires".
func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
